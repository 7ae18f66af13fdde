"""The built-in normalization plugins, registered through entry points exactly like a third-party package.

Installed as `tinygrad_norm_plugins`; the core never imports them by name.
"""
