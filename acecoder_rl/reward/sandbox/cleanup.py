"""What a program leaves behind, removed before the next program on the same worker starts.

Runs inside the sandbox as a top-level module next to ``zygote.py`` (stdlib only). A program can leave state
in three places that outlive its processes: files (its scratch directory, and in 'process' isolation the
host's shared temporary directories), SysV IPC objects (shared memory, semaphores, message queues: they
live in the IPC namespace, which all programs of a worker share, until removed) and, inside a spare's
scratch directory, files for the program that will get it. Processes are the zygote's own business
(``Zygote._kill_uid``). POSIX message queues are never created (the seccomp filter denies ``mq_open``) and
POSIX shared memory is a file in ``/dev/shm``, which is read-only inside bubblewrap.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import stat
import sys
from typing import Callable

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Places every uid may write besides a program's own scratch directory, in 'process' isolation (inside
# bubblewrap these are read-only or absent, and so skipped): only their top level is swept.
SHARED_PLACES = ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue", "/run/lock", "/var/lock")
IPC_RMID = 0
# ctl commands that count a namespace's objects (in struct shm_info.used_ids, seminfo.semusz, msginfo.msgpool)
_SHM_INFO, _SEM_INFO, _MSG_INFO = 14, 19, 12
# /proc/sysvipc file -> the column holding each object's id
_IPC_ID_COLUMNS = {"shm": "shmid", "sem": "semid", "msg": "msqid"}

_libc = ctypes.CDLL(None, use_errno=True)
_info = (ctypes.c_int * 64)()  # large enough for any of the *_INFO structs


# ------------------------------------------------------------------------------------------------- files
def remove_tree(path: str) -> None:
    """Remove the directory ``path`` and everything in it, or raise ``OSError`` saying what stopped it.

    Unlike ``shutil.rmtree`` (one open descriptor per level, and a Python frame: a tree 250 levels deep
    exhausts the zygote's RLIMIT_NOFILE, one 1,000 deep its recursion limit, and ``ignore_errors`` hides
    both), this holds at most four descriptors whatever the depth, never builds a path (names are resolved
    relative to open directories, so no path is too long), follows no symbolic link, and gets through
    directories a program closed with ``chmod 000``."""
    parent = os.open(os.path.dirname(path) or ".", _DIR_FLAGS)
    try:
        name = os.path.basename(path)
        top = _open_dir(parent, name)
        try:
            _empty(top)
        finally:
            os.close(top)
        os.rmdir(name, dir_fd=parent)
    finally:
        os.close(parent)


def _open_dir(parent: int, name: str) -> int:
    """Open a directory to empty it, first giving its owner full access back (root does not need it, a
    zygote sharing the programs' uid does: it owns what they made)."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=parent)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    if os.fstat(fd).st_mode & 0o700 != 0o700:
        os.fchmod(fd, 0o700)
    return fd


def _empty(top: int) -> None:
    """Remove everything in the directory open as ``top``, flattening instead of descending: each
    subdirectory is emptied of its files and its own subdirectories are moved up into ``top`` (renamed),
    until ``top`` holds nothing. Linear in the number of entries; entries moved in while ``top`` is being
    read may or may not be seen by that pass, so passes repeat until one finds nothing."""
    names = itertools.count()
    while True:
        found = False
        with os.scandir(top) as entries:
            for entry in entries:
                found = True
                if entry.is_dir(follow_symlinks=False):
                    _flatten(top, entry.name, names)
                    os.rmdir(entry.name, dir_fd=top)
                else:
                    os.unlink(entry.name, dir_fd=top)
        if not found:
            return


def _flatten(top: int, name: str, names: itertools.count) -> None:
    """Empty ``top``/``name`` of files and move its subdirectories up into ``top``."""
    fd = _open_dir(top, name)
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    _move_up(fd, entry.name, top, names)
                else:
                    os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)


def _move_up(src: int, name: str, top: int, names: itertools.count) -> None:
    """Rename directory ``src``/``name`` into ``top`` under a name no entry there has. Never over an entry:
    ``top`` is being read in batches, and an entry replaced after its batch was read would come back."""
    new = _free_name(top, names)
    try:
        os.rename(name, new, src_dir_fd=src, dst_dir_fd=top)
    except PermissionError:  # moving a directory rewrites its "..": it must be writable
        os.chmod(name, 0o700, dir_fd=src)
        os.rename(name, new, src_dir_fd=src, dst_dir_fd=top)


def _free_name(top: int, names: itertools.count) -> str:
    while True:
        name = f".flat{next(names)}"
        try:
            os.stat(name, dir_fd=top, follow_symlinks=False)
        except FileNotFoundError:
            return name


def claim_scratch(uid: int | None) -> None:
    """In a child about to become the programs' uid, in its scratch directory: make the directory the
    programs', empty.

    A spare's directory belongs to the zygote's uid, mode 0700, inside a scratch root nobody else may list,
    until this moment, so no running program can have planted anything in it; when programs share the
    zygote's uid that protection does not exist, so whatever an earlier program put there is removed."""
    fd = os.open(".", _DIR_FLAGS)
    try:
        _empty(fd)
        if uid is not None:
            os.fchown(fd, uid, uid)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------- IPC
def ipc_in_use() -> bool:
    """Does this IPC namespace hold any SysV object at all? Three syscalls (~2 us), where reading
    /proc/sysvipc costs ~40 us: in a sandbox's own namespace, nearly every program made none."""
    return (_counts(_libc.shmctl(0, _SHM_INFO, _info), 0) or _counts(_libc.semctl(0, 0, _SEM_INFO, _info), 7)
            or _counts(_libc.msgctl(0, _MSG_INFO, _info), 0))


def _counts(result: int, at: int) -> bool:
    """The count at ``at`` of the *_INFO struct just filled; a failed call (a kernel without SysV IPC)
    counts as "maybe": /proc/sysvipc will tell."""
    return result < 0 or _info[at] > 0


def ipc_objects(owner: int) -> list[tuple[str, int]]:
    """The SysV IPC objects (kind, id) that ``owner`` created or owns, as /proc/sysvipc lists them.

    Owner *or* creator: a program may hand its object to another uid (IPC_SET), never its creator id."""
    found = []
    for kind, id_column in _IPC_ID_COLUMNS.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                header, *rows = f.read().splitlines()
        except (OSError, ValueError):  # a kernel without SysV IPC
            continue
        columns = header.split()
        at_id, at_uid, at_cuid = (columns.index(c) for c in (id_column, "uid", "cuid"))
        for row in rows:
            values = row.split()
            if owner in (int(values[at_uid]), int(values[at_cuid])):
                found.append((kind, int(values[at_id])))
    return found


def remove_ipc(objects: list[tuple[str, int]]) -> None:
    """IPC_RMID each object (as its creator or owner: removing needs that, or CAP_SYS_ADMIN). A segment
    still attached goes when the last process detaches: every program process is dead by now."""
    for kind, ident in objects:
        if kind == "shm":
            _libc.shmctl(ident, IPC_RMID, None)
        elif kind == "sem":
            _libc.semctl(ident, 0, IPC_RMID)
        else:
            _libc.msgctl(ident, IPC_RMID, None)


# ----------------------------------------------------------------------------------------------- sweeper
class Sweeper:
    """One zygote's clean-up after each program. Whatever cannot be removed is logged (the zygote's stderr
    is its log): the scratch directory keeps its unique name, which is never given out again."""

    def __init__(self, uid: int | None, private_ipc: bool, become: Callable[[], None]) -> None:
        self.uid = uid  # the programs' dedicated uid, or None when they share ours
        self.become = become  # in a forked process: take the programs' uid
        # Whose IPC objects are the programs': with a shared uid, only ours in a namespace of our own.
        self.ipc_owner = uid if uid is not None else (os.geteuid() if private_ipc else None)
        # Only a dedicated uid tells the programs' files from everyone else's in shared places.
        self.places = [p for p in SHARED_PLACES if uid is not None and _world_writable(p)]

    def after_program(self, scratch: str | None) -> None:
        """Remove what the program left: run once all of its processes are gone."""
        if scratch is not None:
            self._remove(scratch, "scratch directory")
        for place in self.places:
            self._sweep_place(place)
        if self.ipc_owner is not None:
            self._sweep_ipc(self.ipc_owner)

    def _remove(self, path: str, what: str) -> None:
        try:
            remove_tree(path)
        except OSError as exc:
            _log(f"{what} {path} not removed: {exc}")

    def _sweep_place(self, place: str) -> None:
        """Remove the entries of a shared place that belong to the programs' uid."""
        try:
            with os.scandir(place) as entries:
                mine = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries
                        if e.stat(follow_symlinks=False).st_uid == self.uid]
        except OSError as exc:
            _log(f"cannot sweep {place}: {exc}")
            return
        for name, is_dir in mine:
            path = os.path.join(place, name)
            if is_dir:
                self._remove(path, "directory")
                continue
            try:
                os.unlink(path)
            except OSError as exc:
                _log(f"file {path} not removed: {exc}")

    def _sweep_ipc(self, owner: int) -> None:
        """Remove the programs' IPC objects, as their uid (the zygote has no CAP_SYS_ADMIN) in a forked
        process; count and list them first, so that a program that made none costs neither a fork nor (in a
        namespace of our own) reading /proc/sysvipc."""
        if not ipc_in_use():
            return
        objects = ipc_objects(owner)
        if not objects:
            return
        if self.uid is None:
            remove_ipc(objects)
        else:
            pid = os.fork()
            if pid == 0:
                try:
                    self.become()
                    remove_ipc(objects)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
        left = ipc_objects(owner)
        if left:
            _log(f"IPC objects not removed: {left}")


def _world_writable(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and bool(st.st_mode & stat.S_IWOTH)


def _log(message: str) -> None:
    print(f"zygote {os.getpid()}: {message}", file=sys.stderr, flush=True)
