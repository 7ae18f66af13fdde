// CUDA's execution model on the CPU, for running the project's CUDA C unchanged where there is no GPU.
//
// Included before a kernel source and compiled with g++ (cuda_emulated.py does both). What it models:
//   - each CUDA thread is a fiber with its own stack; the blocks of a grid run one at a time;
//   - __syncthreads is a true barrier: every thread of the block waits at the same one (the same source
//     line), and a thread that waits while another waits elsewhere or has exited is reported;
//   - __shfl_down_sync is resolved when every lane its mask names has arrived at it, by PTX's rules for
//     width, delta and lanes past the segment's end; a lane named in the mask that is absent is reported;
//   - __shared__ variables live in one section, filled with NaN bytes (0xFF) before every block;
//   - the launch's thread and block orders are chosen by a schedule: 0 ascending, 1 descending, >= 2 a
//     seeded shuffle, so that a result depending on the order shows up as a difference between runs;
//   - a fault (a guard page, a null pointer, a fiber's stack overflow) or a launch past its time limit
//     ends the launch with a message instead of the process.
// What it cannot model: the memory model, races inside one stretch between barriers, divergence, speed.
#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>
#include <vector>
#if !defined(__x86_64__) || defined(EMU_UCONTEXT)
#define EMU_USE_UCONTEXT 1
#include <ucontext.h>
#endif

namespace emu {

struct dim3 { unsigned x = 1, y = 1, z = 1; };

// What the launcher (cuda_emulated.py) passes: the geometry, the schedule, the buffers' guard regions (to
// name the argument a fault hit) and room for the error message.
struct Launch {
    unsigned grid[3], block[3];
    int schedule;
    double timeout_s;
    int n_regions;
    const uint64_t* regions;  // per region: begin, end (addresses), argument index
    char error[2048];
};

enum State { READY, AT_BARRIER, AT_SHUFFLE, EXITED };

struct Thread {
    void* sp;                 // the saved stack pointer while switched out
#ifdef EMU_USE_UCONTEXT
    ucontext_t context;
#endif
    char* stack;
    dim3 idx;
    unsigned linear;
    State state;
    int site;                 // the source line of the barrier or shuffle it waits at
    unsigned mask;
    int delta, width;
    uint64_t value, result;   // a shuffled value's bits, in and out
};

constexpr int MAX_THREADS = 1024, WARP = 32;
constexpr size_t STACK = 64 * 1024, SHARED_LIMIT = 48 * 1024;

static Thread threads[MAX_THREADS];
static char* stacks;          // MAX_THREADS stacks, each above a guard page
static Thread* current;
static void* scheduler_sp;
#ifdef EMU_USE_UCONTEXT
static ucontext_t scheduler_context;
#endif
static dim3 block_idx, block_dim, grid_dim;
static unsigned n_threads;
static void (*body)(void*);
static void* body_context;
static const Launch* launch_now;
static char* error;
static bool failed;
static sigjmp_buf fault_exit;

static void fail(const char* format, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char* format, ...) {
    if (failed) return;  // keep the first report
    failed = true;
    va_list args;
    va_start(args, format);
    vsnprintf(error, sizeof(Launch::error), format, args);
    va_end(args);
}

// ---- switching between the scheduler and a fiber ------------------------------------------------------
#ifndef EMU_USE_UCONTEXT
extern "C" void emu_switch(void** save_sp, void* to_sp);  // saves the callee-saved registers, swaps stacks
asm(R"(
.text
.p2align 4
.hidden emu_switch
.globl emu_switch
.type emu_switch,@function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
)");
#endif

static void to_scheduler() {
#ifdef EMU_USE_UCONTEXT
    swapcontext(&current->context, &scheduler_context);
#else
    emu_switch(&current->sp, scheduler_sp);
#endif
}

static void to_thread(Thread* t) {
    current = t;
#ifdef EMU_USE_UCONTEXT
    swapcontext(&scheduler_context, &t->context);
#else
    emu_switch(&scheduler_sp, t->sp);
#endif
}

static void thread_main() {
    body(body_context);
    current->state = EXITED;
    to_scheduler();
}

static void start(Thread* t) {
    char* top = t->stack + STACK;
#ifdef EMU_USE_UCONTEXT
    getcontext(&t->context);
    t->context.uc_stack.ss_sp = t->stack;
    t->context.uc_stack.ss_size = STACK;
    t->context.uc_link = nullptr;
    makecontext(&t->context, thread_main, 0);
#else
    uint64_t* sp = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(top) & ~uintptr_t(15));
    *--sp = 0;                                          // thread_main's return address: it never returns
    *--sp = reinterpret_cast<uint64_t>(&thread_main);   // where emu_switch's `ret` goes
    for (int i = 0; i < 6; ++i) *--sp = 0;              // rbp, rbx, r12-r15
    t->sp = sp;
#endif
    t->state = READY;
}

// ---- what a kernel calls ----------------------------------------------------------------------------
static void barrier(int line) {
    current->state = AT_BARRIER;
    current->site = line;
    to_scheduler();
}

template <class V>
static V shfl_down(int line, unsigned mask, V v, int delta, int width = WARP) {
    static_assert(sizeof(V) <= sizeof(uint64_t), "shuffles move at most 64 bits");
    Thread* t = current;
    t->state = AT_SHUFFLE;
    t->site = line;
    t->mask = mask;
    t->delta = delta;
    t->width = width;
    t->value = 0;
    std::memcpy(&t->value, &v, sizeof(V));
    to_scheduler();
    V out;
    std::memcpy(&out, &t->result, sizeof(V));
    return out;
}

static const char* where(const Thread& t) {
    static char text[64];
    if (t.state == EXITED) return "has exited";
    snprintf(text, sizeof text, "waits at the %s on line %d", t.state == AT_BARRIER ? "__syncthreads" : "shuffle",
             t.site);
    return text;
}

// Resolve every warp whose shuffling lanes are all there; false if none could be.
static bool resolve_shuffles() {
    bool any = false;
    for (unsigned w0 = 0; w0 < n_threads && !failed; w0 += WARP) {
        Thread* first = nullptr;
        for (unsigned i = w0; i < std::min(w0 + WARP, n_threads); ++i)
            if (threads[i].state == AT_SHUFFLE) { first = &threads[i]; break; }
        if (!first) continue;
        const unsigned mask = first->mask;
        const int width = first->width;
        for (int lane = 0; lane < WARP; ++lane) {
            const unsigned i = w0 + lane;
            const bool named = mask >> lane & 1u;
            if (named && i >= n_threads) {
                fail("thread %u: the mask 0x%08x of the shuffle on line %d names lane %d, which does not exist "
                     "(the block has %u threads)", first->linear, mask, first->site, lane, n_threads);
                return false;
            }
            if (i >= n_threads) continue;
            const Thread& t = threads[i];
            if (named && (t.state != AT_SHUFFLE || t.site != first->site || t.mask != mask)) {
                fail("thread %u: the shuffle on line %d (mask 0x%08x) waits for lane %d, which %s", first->linear,
                     first->site, mask, lane, t.state == AT_SHUFFLE && t.site == first->site ?
                     "passes a different mask" : where(t));
                return false;
            }
            if (!named && t.state == AT_SHUFFLE && t.site == first->site) {
                fail("thread %u: shuffles on line %d but its lane is not in the mask 0x%08x", t.linear, t.site, mask);
                return false;
            }
        }
        if (width < 1 || width > WARP || (width & (width - 1))) {
            fail("thread %u: shuffle width %d on line %d is not a power of two up to 32", first->linear, width,
                 first->site);
            return false;
        }
        for (int lane = 0; lane < WARP; ++lane) {  // PTX shfl.down: the source lane stays inside the segment
            if (!(mask >> lane & 1u)) continue;
            Thread& t = threads[w0 + lane];
            const int source = lane + t.delta, segment_end = (lane / width) * width + width - 1;
            if (t.delta < 0 || source > segment_end) { t.result = t.value; }
            else if (!(mask >> source & 1u)) {
                fail("thread %u: the shuffle on line %d reads lane %d, which is not in the mask 0x%08x", t.linear,
                     t.site, source, mask);
                return false;
            } else { t.result = threads[w0 + source].value; }
        }
        for (int lane = 0; lane < WARP; ++lane)
            if (mask >> lane & 1u) threads[w0 + lane].state = READY;
        any = true;
    }
    return any;
}

// Release a barrier every live thread waits at; false (with the report) otherwise.
static bool resolve_barrier() {
    const Thread* waiting = nullptr;
    for (unsigned i = 0; i < n_threads; ++i)
        if (threads[i].state == AT_BARRIER) { waiting = &threads[i]; break; }
    if (!waiting) return false;
    for (unsigned i = 0; i < n_threads; ++i) {
        const Thread& t = threads[i];
        if (t.state != AT_BARRIER || t.site != waiting->site) {
            fail("block (%u, %u, %u): thread %u waits at the __syncthreads on line %d while thread %u %s",
                 block_idx.x, block_idx.y, block_idx.z, waiting->linear, waiting->site, t.linear, where(t));
            return false;
        }
    }
    for (unsigned i = 0; i < n_threads; ++i) threads[i].state = READY;
    return true;
}

// ---- the scheduler ------------------------------------------------------------------------------------
static uint64_t mix(uint64_t x) {  // splitmix64: the seeded shuffles' random numbers
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void order(unsigned* out, unsigned n, int schedule, uint64_t salt) {
    for (unsigned i = 0; i < n; ++i) out[i] = schedule == 1 ? n - 1 - i : i;
    if (schedule >= 2)
        for (unsigned i = n; i > 1; --i) std::swap(out[i - 1], out[mix(salt * 1000003u + schedule * 7919u + i) % i]);
}

extern "C" char __start_emu_shared[] __attribute__((weak));
extern "C" char __stop_emu_shared[] __attribute__((weak));

static void run_block(const unsigned* thread_order) {
    if (__start_emu_shared) std::memset(__start_emu_shared, 0xFF, __stop_emu_shared - __start_emu_shared);
    for (unsigned i = 0; i < n_threads; ++i) start(&threads[i]);
    for (;;) {
        bool ran = true;
        while (ran && !failed) {
            ran = false;
            for (unsigned k = 0; k < n_threads && !failed; ++k) {
                Thread* t = &threads[thread_order[k]];
                if (t->state == READY) { to_thread(t); ran = true; }
            }
        }
        if (failed) return;
        bool all_exited = true;
        for (unsigned i = 0; i < n_threads; ++i) all_exited &= threads[i].state == EXITED;
        if (all_exited) return;
        if (!resolve_shuffles() && !failed && !resolve_barrier() && !failed)
            fail("block (%u, %u, %u): no thread can go on", block_idx.x, block_idx.y, block_idx.z);
        if (failed) return;
    }
}

static const char* region_of(uintptr_t address, int* argument, long long* offset) {
    for (int r = 0; r < launch_now->n_regions; ++r) {
        const uint64_t* g = launch_now->regions + 3 * r;
        if (address >= g[0] - 8704 && address < g[1] + 8704) {  // as far as the guard pages reach
            *argument = int(g[2]);
            *offset = address < g[0] ? -(long long)(g[0] - address) : (long long)(address - g[1]);
            return address < g[0] ? "before the start of" : "past the end of";
        }
    }
    return nullptr;
}

static void on_fault(int signal, siginfo_t* info, void*) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(info->si_addr);
    int argument;
    long long offset;
    const char* side = region_of(address, &argument, &offset);
    const unsigned t = current ? current->linear : 0;
    if (signal == SIGALRM)
        fail("the launch did not finish within %.0f s (a loop that never ends?)", launch_now->timeout_s);
    else if (side)
        fail("thread %u of block (%u, %u, %u) accessed argument %d %lld bytes %s its buffer", t, block_idx.x,
             block_idx.y, block_idx.z, argument, offset < 0 ? -offset : offset + 1, side);
    else if (address < 65536)
        fail("thread %u of block (%u, %u, %u) dereferenced a null pointer (address 0x%lx)", t, block_idx.x,
             block_idx.y, block_idx.z, (unsigned long)address);
    else if (stacks && address >= (uintptr_t)stacks && address < (uintptr_t)stacks + MAX_THREADS * (STACK + 4096))
        fail("thread %u of block (%u, %u, %u) overflowed its %zu-byte stack", t, block_idx.x, block_idx.y,
             block_idx.z, STACK);
    else
        fail("thread %u of block (%u, %u, %u): signal %d at address 0x%lx", t, block_idx.x, block_idx.y,
             block_idx.z, signal, (unsigned long)address);
    siglongjmp(fault_exit, 1);
}

static bool allocate_stacks() {
    if (stacks) return true;
    const size_t each = STACK + 4096;
    void* p = mmap(nullptr, MAX_THREADS * each, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    stacks = static_cast<char*>(p);
    for (int i = 0; i < MAX_THREADS; ++i) {
        mprotect(stacks + i * each, 4096, PROT_NONE);  // below each stack: a guard page
        threads[i].stack = stacks + i * each + 4096;
    }
    return true;
}

static int run_grid(Launch* launch, void (*fn)(void*), void* context) {
    launch_now = launch;
    error = launch->error;
    error[0] = 0;
    failed = false;
    current = nullptr;
    body = fn;
    body_context = context;
    block_dim = {launch->block[0], launch->block[1], launch->block[2]};
    grid_dim = {launch->grid[0], launch->grid[1], launch->grid[2]};
    n_threads = block_dim.x * block_dim.y * block_dim.z;
    const size_t shared = __start_emu_shared ? size_t(__stop_emu_shared - __start_emu_shared) : 0;
    if (!block_dim.x || !block_dim.y || !block_dim.z || n_threads > MAX_THREADS || block_dim.z > 64)
        fail("a block of (%u, %u, %u) threads: CUDA allows 1 to 1024 (z at most 64)", block_dim.x, block_dim.y,
             block_dim.z);
    else if (!grid_dim.x || !grid_dim.y || !grid_dim.z || grid_dim.x > 2147483647u || grid_dim.y > 65535 ||
             grid_dim.z > 65535)
        fail("a grid of (%u, %u, %u) blocks: CUDA allows x up to 2^31 - 1, y and z up to 65535", grid_dim.x,
             grid_dim.y, grid_dim.z);
    else if (shared > SHARED_LIMIT)
        fail("%zu bytes of static __shared__ memory: CUDA allows 48 KiB", shared);
    else if (!allocate_stacks())
        fail("could not map the fibers' stacks");
    if (failed) return 1;
    for (unsigned i = 0; i < n_threads; ++i) {
        threads[i].linear = i;
        threads[i].idx = {i % block_dim.x, i / block_dim.x % block_dim.y, i / (block_dim.x * block_dim.y)};
    }
    const unsigned long long blocks = 1ull * grid_dim.x * grid_dim.y * grid_dim.z;
    unsigned thread_order[MAX_THREADS];
    order(thread_order, n_threads, launch->schedule, 1);

    static char alternate[64 * 1024];  // the fault handler's own stack: a fiber's may be the one that overflowed
    stack_t alt = {}, old_alt;
    alt.ss_sp = alternate;
    alt.ss_size = sizeof alternate;
    sigaltstack(&alt, &old_alt);
    struct sigaction action = {}, old_segv, old_bus, old_alarm;
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &old_segv);
    sigaction(SIGBUS, &action, &old_bus);
    sigaction(SIGALRM, &action, &old_alarm);
    itimerval limit = {}, old_limit;
    limit.it_value.tv_sec = (long)launch->timeout_s;
    limit.it_value.tv_usec = (long)((launch->timeout_s - (long)launch->timeout_s) * 1e6);
    if (sigsetjmp(fault_exit, 1) == 0) {
        setitimer(ITIMER_REAL, &limit, &old_limit);
        // block order: ascending, descending or shuffled (grids up to 2^20 blocks; larger ones rotate)
        std::vector<unsigned long long> shuffled;
        if (launch->schedule >= 2 && blocks <= (1ull << 20)) {
            shuffled.resize(blocks);
            for (unsigned long long i = 0; i < blocks; ++i) shuffled[i] = i;
            for (unsigned long long i = blocks; i > 1; --i)
                std::swap(shuffled[i - 1], shuffled[mix(i * 31u + launch->schedule) % i]);
        }
        for (unsigned long long k = 0; k < blocks && !failed; ++k) {
            unsigned long long b = launch->schedule == 1 ? blocks - 1 - k : k;
            if (launch->schedule >= 2) b = shuffled.empty() ? (k + mix(launch->schedule)) % blocks : shuffled[k];
            block_idx = {unsigned(b % grid_dim.x), unsigned(b / grid_dim.x % grid_dim.y),
                         unsigned(b / (1ull * grid_dim.x * grid_dim.y))};
            run_block(thread_order);
        }
    }
    itimerval off = {};
    setitimer(ITIMER_REAL, &off, nullptr);
    sigaction(SIGSEGV, &old_segv, nullptr);
    sigaction(SIGBUS, &old_bus, nullptr);
    sigaction(SIGALRM, &old_alarm, nullptr);
    sigaltstack(&old_alt, nullptr);
    return failed ? 1 : 0;
}

// A launch of `fn` (the kernel called with its arguments) on every thread of the grid.
template <class F>
static int launch(Launch* l, F fn) {
    return run_grid(l, [](void* c) { (*static_cast<F*>(c))(); }, &fn);
}

// float16 <-> float32, round to nearest even: what the PTX cvt instructions do, in software
static float half_to_float(unsigned short h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0x1f) bits = sign | 0x7f800000u | (mantissa << 13);          // inf, NaN (payload kept)
    else if (exponent) bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // normal
    else if (!mantissa) bits = sign;                                             // ±0
    else {                                                                       // subnormal: normalize
        int e = -1;
        uint32_t m = mantissa;
        do { m <<= 1; ++e; } while (!(m & 0x400));
        bits = sign | uint32_t(112 - e) << 23 | (m & 0x3ff) << 13;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

static unsigned short float_to_half(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    const uint32_t sign = (bits >> 16) & 0x8000, magnitude = bits & 0x7fffffffu;
    if (magnitude >= 0x7f800000u)  // inf, or NaN kept quiet with the payload's top bits
        return sign | 0x7c00 | (magnitude > 0x7f800000u ? 0x200 | ((magnitude >> 13) & 0x3ff) : 0);
    if (magnitude >= 0x477ff000u) return sign | 0x7c00;  // rounds past 65504: inf
    if (magnitude < 0x38800000u) {  // below 2^-14: a subnormal result (or 0), rounded at 2^-24
        if (magnitude < 0x33000000u) return sign;  // under half of the smallest subnormal: ±0
        const uint32_t e = magnitude >> 23, m = (magnitude & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - e;  // m · 2^(e - 150) in units of 2^-24
        uint32_t q = m >> shift;
        const uint32_t rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (q & 1))) ++q;
        return sign | q;
    }
    uint32_t h = ((magnitude >> 13) - (112u << 10));  // exponent rebased, mantissa truncated to 10 bits
    const uint32_t rest = magnitude & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;  // a carry into the exponent is still right
    return sign | h;
}

}  // namespace emu

// ---- the CUDA names a kernel source uses ------------------------------------------------------------
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ __attribute__((section("emu_shared"))) static
#define threadIdx (emu::current->idx)
#define blockIdx (emu::block_idx)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)
#define __syncthreads() emu::barrier(__LINE__)
#define __shfl_down_sync(...) emu::shfl_down(__LINE__, __VA_ARGS__)
static inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
static inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
using std::fmax;
using std::min;
using std::max;

// The caller's entry points, one per kernel, are generated after the source: emu_launch_NAME(launch, args).
// Buffers between guard pages: emu_buffer(bytes, &data) maps [guard][256 bytes][data...][rest][guard].
extern "C" void* emu_buffer(size_t bytes, char** data, size_t* total) {
    const size_t page = 4096, inner = (256 + bytes + 256 + page - 1) / page * page;
    *total = inner + 2 * page;
    void* p = mmap(nullptr, *total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    char* base = static_cast<char*>(p);
    mprotect(base, page, PROT_NONE);
    mprotect(base + page + inner, page, PROT_NONE);
    std::memset(base + page, 0xFF, inner);  // canaries (and outputs) start as NaN bytes
    *data = base + page + 256;
    return base;
}

extern "C" void emu_free(void* base, size_t total) { munmap(base, total); }

extern "C" unsigned short emu_float_to_half(float f) { return emu::float_to_half(f); }
extern "C" float emu_half_to_float(unsigned short h) { return emu::half_to_float(h); }
