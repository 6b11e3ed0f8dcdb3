using Mono.Unix.Native;

namespace Packet.Agent.Posix;

/// <summary>
/// Every system call the agent makes on files, in one narrow seam: the copy engine and the
/// workspace code are written against it, <see cref="PosixSystem"/> is the real one, and tests
/// wrap it to inject faults a real disk will not produce on demand (EIO, ENOSPC mid-copy).
/// </summary>
/// <remarks>
/// The kernel's convention: a method returns a non-negative value on success and the negated
/// errno on failure, so hot loops pay for no exception and no thread-local lookup.
/// Names are Mono.Posix strings: bytes that are not valid UTF-8 travel as U+0000 + the byte and
/// are written back byte for byte. Paths are always relative to a directory descriptor.
/// </remarks>
public interface IPosix
{
    uint EffectiveUserId { get; }

    uint EffectiveGroupId { get; }

    int OpenAt(int dirFd, string name, OpenFlags flags, FilePermissions mode);

    int Close(int fd);

    int FStat(int fd, out Stat stat);

    /// <summary>fstatat with AT_SYMLINK_NOFOLLOW: a symlink is described, never followed.</summary>
    int LStatAt(int dirFd, string name, out Stat stat);

    int MkdirAt(int dirFd, string name, FilePermissions mode);

    int MkfifoAt(int dirFd, string name, FilePermissions mode);

    int SymlinkAt(string target, int dirFd, string name);

    int ReadLinkAt(int dirFd, string name, out string target);

    int LinkAt(int oldDirFd, string oldName, int newDirFd, string newName);

    /// <summary>
    /// renameat(2), or with <paramref name="noReplace"/> renameat2(RENAME_NOREPLACE), which some volumes
    /// refuse with EINVAL: callers that must not replace use <see cref="NoReplaceRename.Move"/>, which works everywhere.
    /// </summary>
    int RenameAt(int oldDirFd, string oldName, int newDirFd, string newName, bool noReplace);

    int UnlinkAt(int dirFd, string name, bool isDirectory);

    int FChown(int fd, uint uid, uint gid);

    /// <summary>fchownat with AT_SYMLINK_NOFOLLOW: changes a symlink itself.</summary>
    int LChownAt(int dirFd, string name, uint uid, uint gid);

    int FChmod(int fd, FilePermissions mode);

    /// <summary>
    /// The process's file mode creation mask, read from /proc/self/status so that it is never changed
    /// (umask(2) can only be read by setting it, a race with every other thread creating files);
    /// null where /proc is not mounted.
    /// </summary>
    FilePermissions? ReadFileCreationMask();

    /// <summary>Sets access and modification time, to the nanosecond, from <paramref name="times"/>.</summary>
    int FUtimens(int fd, in Stat times);

    /// <summary>utimensat with AT_SYMLINK_NOFOLLOW: for symlinks and FIFOs, which are not opened.</summary>
    int LUtimensAt(int dirFd, string name, in Stat times);

    /// <summary>flistxattr into <paramref name="buffer"/>: NUL-separated names; returns the length.</summary>
    long FListXattr(int fd, byte[] buffer);

    long FGetXattr(int fd, string name, byte[] buffer);

    int FSetXattr(int fd, string name, byte[] value, int length);

    /// <summary>copy_file_range at explicit offsets; returns bytes copied, 0 at end of file.</summary>
    long CopyFileRange(int inFd, long inOffset, int outFd, long outOffset, long length);

    /// <summary>sendfile from <paramref name="inOffset"/> to the output's current position.</summary>
    long SendFile(int outFd, int inFd, long inOffset, long length);

    long PRead(int fd, Span<byte> buffer, long offset);

    long Write(int fd, ReadOnlySpan<byte> buffer);

    long PWrite(int fd, ReadOnlySpan<byte> buffer, long offset);

    long LSeek(int fd, long offset, int whence);

    int FTruncate(int fd, long length);

    /// <summary>getdents64 into <paramref name="buffer"/>; 0 at the end of the directory.</summary>
    int GetDents(int fd, Span<byte> buffer);

    int FSync(int fd);

    int SyncFs(int fd);

    /// <summary>
    /// sync_file_range(SYNC_FILE_RANGE_WRITE) over a range (length 0: to the end): starts writing its dirty pages
    /// back and returns without waiting. Durability still comes from <see cref="SyncFs"/>; this only
    /// leaves it less to do.
    /// </summary>
    int StartWriteback(int fd, long offset, long length);

    int FStatVfs(int fd, out Statvfs stat);

    /// <summary>fstatfs's f_type (the file system's magic number, as in linux/magic.h), or -errno.</summary>
    long FileSystemType(int fd);

    int Flock(int fd, int operation);

    /// <summary>faccessat(2) with AT_EACCESS: may this process (its effective ids and groups) use the entry so (W_OK = 2, X_OK = 1)?</summary>
    int AccessAt(int dirFd, string name, int mode);

    /// <summary>kill(2): <paramref name="pid"/> below 0 signals that process group; signal 0 only asks whether the process exists.</summary>
    int Kill(int pid, int signal);
}
