"""Checkpoint files: .npz archives of named arrays (no pickle), signed in the zip comment so that damage is
detected; what Module.save writes and serialization.save builds on."""
import hashlib
import os
import re
import zipfile

import numpy as np


class CheckpointError(ValueError):
    """A file is not a checkpoint that `Module.save` (or `save`) wrote, or it was damaged since."""


# save writes this, the number of arrays and a SHA-256 of their names, dtypes, shapes and bytes into the zip
# archive's comment, which np.load ignores: the file stays a plain .npz that NumPy (and a PyTorch script) reads
SIGNATURE = b"tinygrad_norm checkpoint v1"


def checkpoint_path(path):
    """`path` with ".npz" added when it has no such suffix (what np.savez writes)."""
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


def find_checkpoint(path, exact=False):
    """The file `Module.load(path)` reads: what `Module.save(path)` writes (".npz" added) when it is there, else
    `path` itself, so a folder named like the checkpoint never hides it; with `exact` (tg.load), `path` only."""
    path = os.fspath(path)
    added = not exact and not path.endswith(".npz")
    for candidate in dict.fromkeys((path,) if exact else (checkpoint_path(path), path)):
        if os.path.isfile(candidate):
            return candidate
    if os.path.isdir(path):
        raise CheckpointError(f"{path!r} is a folder, not a checkpoint"
                              + (f" (save({path!r}) writes {checkpoint_path(path)!r})" if added else ""))
    raise FileNotFoundError(f"no checkpoint at {path!r}" + (" (nor with .npz added)" if added else ""))


def _digest(arrays):
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.data if a.size else b"")
    return h.hexdigest()


def write_checkpoint(path, arrays):
    """Write name -> NumPy array as an uncompressed .npz archive, as np.savez does, signed in its comment. It is
    written beside `path` and renamed into place, so a save that fails leaves any earlier file whole."""
    if os.path.isdir(path):
        raise CheckpointError(f"cannot save to {path!r}: it is a folder")
    temporary = f"{path}.partial-{os.getpid()}"
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, a in arrays.items():
                with archive.open(name + ".npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(a), allow_pickle=False)
            archive.comment = SIGNATURE + f" arrays={len(arrays)} sha256={_digest(arrays)}".encode()
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def read_checkpoint(path):
    """name -> array from a checkpoint written by `Module.save` (or any .npz of arrays) at `path` or `path`.npz;
    a CheckpointError naming the file and what is wrong for anything else, a damaged file included."""
    return read_archive(find_checkpoint(path))


def read_archive(path):
    """read_checkpoint of exactly the file `path`."""
    what = f"{path!r} is not a checkpoint written by tinygrad_norm (Module.save or save: a .npz archive of arrays)"
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{what}: it is not a .npz (zip) archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            comment = archive.zip.comment  # (NpzFile's ZipFile) the signature
            arrays = {k: archive[k] for k in archive.files}
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise CheckpointError(f"{path!r} is damaged: {type(e).__name__}: {e}") from None
        # NumPy's message suggests allow_pickle=True, which would run code from the file
        raise CheckpointError(f"{what}: it holds Python objects (pickles), which a checkpoint never does") from None
    except Exception as e:  # zip and npy readers raise many kinds on a damaged file: BadZipFile, EOFError, ...
        raise CheckpointError(f"{path!r} is damaged: {type(e).__name__}: {e}") from None
    if comment.startswith(SIGNATURE):
        signed = re.fullmatch(rb" arrays=(\d+) sha256=([0-9a-f]{64})", comment[len(SIGNATURE):])
        if signed is None:
            raise CheckpointError(f"{path!r} is damaged: its signature ({comment!r}) cannot be read")
        if signed.group(2).decode() != _digest(arrays):
            raise CheckpointError(
                f"{path!r} is damaged: its arrays are not the ones save wrote (it signed {int(signed.group(1))} "
                f"arrays; {len(arrays)} read back, and their names, dtypes, shapes or bytes differ)")
    return arrays
