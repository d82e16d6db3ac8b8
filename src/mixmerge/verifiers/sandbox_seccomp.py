"""A seccomp filter (classic BPF, as bubblewrap's ``--seccomp`` loads it) that denies the kernel keyring calls.

Keyrings are not namespaced: a sandbox inherits its caller's session keyring (a login session has one), so a
program could leave a key there for the next program, or for any process of the caller, to read. ``add_key``,
``request_key`` and ``keyctl`` fail with EPERM instead (as in Docker's and Flatpak's default filters); every other
call is allowed. The filter covers the native and the compat ABI of x86-64 and of 64-bit ARM; on any other
architecture nothing is filtered (``supported()`` says so and the sandbox's description names it).
"""
from __future__ import annotations

import os
import platform
import struct

LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
ARCH_OFFSET, NR_OFFSET = 4, 0  # in struct seccomp_data
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM = 1
X32_BIT = 0x40000000
# audit arch -> (add_key, request_key, keyctl) numbers of that ABI
KEYRING_CALLS = {
    "x86_64": {0xC000003E: (248, 249, 250, X32_BIT | 248, X32_BIT | 249, X32_BIT | 250),  # native and x32
               0x40000003: (286, 287, 288)},  # i386
    "aarch64": {0xC00000B7: (217, 218, 219), 0x40000028: (309, 310, 311)},  # native and arm (EABI)
}


def supported() -> bool:
    return platform.machine() in KEYRING_CALLS


def keyring_filter() -> bytes:
    """The filter program: ``struct sock_filter`` entries in native byte order."""
    code: list[tuple[int, int | str, int, int]] = [(LD_W_ABS, 0, 0, ARCH_OFFSET)]
    for arch, numbers in KEYRING_CALLS.get(platform.machine(), {}).items():
        block = [(LD_W_ABS, 0, 0, NR_OFFSET), *[(JEQ_K, "deny", 0, nr) for nr in numbers], (RET_K, 0, 0, RET_ALLOW)]
        code.append((JEQ_K, 0, len(block), arch))  # not this ABI: skip its block
        code += block
    code.append((RET_K, 0, 0, RET_ALLOW))
    deny = len(code)
    code.append((RET_K, 0, 0, RET_ERRNO | EPERM))
    out = bytearray()
    for at, (op, jump_true, jump_false, k) in enumerate(code):
        if jump_true == "deny":
            jump_true = deny - at - 1
        out += struct.pack("=HBBI", op, jump_true, jump_false, k)
    return bytes(out)


def filter_fd() -> int:
    """A memfd holding the filter, positioned at its start, for ``bwrap --seccomp FD`` (the caller closes it)."""
    fd = os.memfd_create("mixmerge-seccomp", 0)
    os.write(fd, keyring_filter())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
