using Mono.Unix;
using Mono.Unix.Native;

namespace Packet.Agent.Posix;

/// <summary>The real <see cref="IPosix"/>: Mono.Posix where it has the call, <see cref="LibC"/> where it does not.</summary>
public sealed unsafe class PosixSystem : IPosix
{
    public static readonly PosixSystem Instance = new();

    private PosixSystem()
    {
        EffectiveUserId = Syscall.geteuid();
        EffectiveGroupId = Syscall.getegid();
    }

    public uint EffectiveUserId { get; }

    public uint EffectiveGroupId { get; }

    public int OpenAt(int dirFd, string name, OpenFlags flags, FilePermissions mode) =>
        Result(Syscall.openat(dirFd, name, flags, mode));

    public int Close(int fd) => Result(Syscall.close(fd));

    public int FStat(int fd, out Stat stat) => Result(Syscall.fstat(fd, out stat));

    public int LStatAt(int dirFd, string name, out Stat stat) =>
        Result(Syscall.fstatat(dirFd, name, out stat, AtFlags.AT_SYMLINK_NOFOLLOW));

    public int MkdirAt(int dirFd, string name, FilePermissions mode) => Result(Syscall.mkdirat(dirFd, name, mode));

    public int MkfifoAt(int dirFd, string name, FilePermissions mode) => Result(Syscall.mkfifoat(dirFd, name, mode));

    public int SymlinkAt(string target, int dirFd, string name) => Result(Syscall.symlinkat(target, dirFd, name));

    public int ReadLinkAt(int dirFd, string name, out string target)
    {
        // Link targets can be up to PATH_MAX bytes and need not be UTF-8: read bytes, decode as Mono.Posix does.
        var buffer = new byte[4096];
        long length = Syscall.readlinkat(dirFd, name, buffer);
        if (length < 0)
        {
            target = string.Empty;
            return Result(-1);
        }

        target = UnixEncoding.Instance.GetString(buffer, 0, (int)length);
        return 0;
    }

    public int LinkAt(int oldDirFd, string oldName, int newDirFd, string newName) =>
        Result(Syscall.linkat(oldDirFd, oldName, newDirFd, newName, 0));

    public int RenameAt(int oldDirFd, string oldName, int newDirFd, string newName, bool noReplace)
    {
        if (!noReplace)
        {
            return Result(Syscall.renameat(oldDirFd, oldName, newDirFd, newName));
        }

        fixed (byte* oldBytes = NativeName.ToNullTerminated(oldName))
        fixed (byte* newBytes = NativeName.ToNullTerminated(newName))
        {
            return LibCResult(LibC.renameat2(oldDirFd, oldBytes, newDirFd, newBytes, LibC.RENAME_NOREPLACE));
        }
    }

    public int UnlinkAt(int dirFd, string name, bool isDirectory) =>
        Result(Syscall.unlinkat(dirFd, name, isDirectory ? AtFlags.AT_REMOVEDIR : 0));

    public int FChown(int fd, uint uid, uint gid) => Result(Syscall.fchown(fd, uid, gid));

    public int LChownAt(int dirFd, string name, uint uid, uint gid) =>
        Result(Syscall.fchownat(dirFd, name, uid, gid, AtFlags.AT_SYMLINK_NOFOLLOW));

    public int FChmod(int fd, FilePermissions mode) => Result(Syscall.fchmod(fd, mode));

    public FilePermissions? ReadFileCreationMask()
    {
        const string Field = "Umask:";
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith(Field, StringComparison.Ordinal))
                {
                    return (FilePermissions)Convert.ToUInt32(line.AsSpan(Field.Length).Trim().ToString(), 8);
                }
            }
        }
        catch (Exception failure) when (failure is IOException or UnauthorizedAccessException)
        {
            // No /proc (a bare chroot): the caller treats the mask as unknown.
        }

        return null;
    }

    public int FUtimens(int fd, in Stat times) => Result(Syscall.futimens(fd, Timestamps(times)));

    public int LUtimensAt(int dirFd, string name, in Stat times) =>
        Result(Syscall.utimensat(dirFd, name, Timestamps(times), AtFlags.AT_SYMLINK_NOFOLLOW));

    public long FListXattr(int fd, byte[] buffer) => Result(Syscall.flistxattr(fd, buffer, (ulong)buffer.Length));

    public long FGetXattr(int fd, string name, byte[] buffer) =>
        Result(Syscall.fgetxattr(fd, name, buffer, (ulong)buffer.Length));

    public int FSetXattr(int fd, string name, byte[] value, int length) =>
        Result(Syscall.fsetxattr(fd, name, value, (ulong)length));

    public long CopyFileRange(int inFd, long inOffset, int outFd, long outOffset, long length) =>
        LibCResult(LibC.copy_file_range(inFd, &inOffset, outFd, &outOffset, (nuint)length, 0));

    public long SendFile(int outFd, int inFd, long inOffset, long length) =>
        LibCResult(LibC.sendfile(outFd, inFd, &inOffset, (nuint)length));

    public long PRead(int fd, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            return Result(Syscall.pread(fd, p, (ulong)buffer.Length, offset));
        }
    }

    public long Write(int fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            return LibCResult(LibC.write(fd, p, (nuint)buffer.Length));
        }
    }

    public long PWrite(int fd, ReadOnlySpan<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            return Result(Syscall.pwrite(fd, p, (ulong)buffer.Length, offset));
        }
    }

    public long LSeek(int fd, long offset, int whence) => LibCResult(LibC.lseek(fd, offset, whence));

    public int FTruncate(int fd, long length) => Result(Syscall.ftruncate(fd, length));

    public int GetDents(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            return (int)LibCResult(LibC.getdents64(fd, p, (nuint)buffer.Length));
        }
    }

    public int FSync(int fd) => Result(Syscall.fsync(fd));

    public int SyncFs(int fd) => LibCResult(LibC.syncfs(fd));

    public int StartWriteback(int fd, long offset, long length) => LibCResult(LibC.sync_file_range(fd, offset, length, LibC.SYNC_FILE_RANGE_WRITE));

    public int FStatVfs(int fd, out Statvfs stat) => Result(Syscall.fstatvfs(fd, out stat));

    public long FileSystemType(int fd)
    {
        LibC.StatFs volume;
        int result = LibC.fstatfs(fd, &volume);
        return result < 0 ? -LibC.LastErrno() : volume.Type;
    }

    public int Flock(int fd, int operation) => LibCResult(LibC.flock(fd, operation));

    public int Kill(int pid, int signal) => LibCResult(LibC.kill(pid, signal));

    public int AccessAt(int dirFd, string name, int mode)
    {
        fixed (byte* bytes = NativeName.ToNullTerminated(name))
        {
            return LibCResult(LibC.faccessat(dirFd, bytes, mode, LibC.AT_EACCESS));
        }
    }

    private static Timespec[] Timestamps(in Stat times) =>
    [
        new Timespec { tv_sec = times.st_atime, tv_nsec = times.st_atime_nsec },
        new Timespec { tv_sec = times.st_mtime, tv_nsec = times.st_mtime_nsec },
    ];

    private static int Result(int value) => value >= 0 ? value : -(int)Stdlib.GetLastError();

    private static long Result(long value) => value >= 0 ? value : -(long)Stdlib.GetLastError();

    private static int LibCResult(int value) => value >= 0 ? value : -LibC.LastErrno();

    private static long LibCResult(long value) => value >= 0 ? value : -LibC.LastErrno();

    private static long LibCResult(nint value) => value >= 0 ? value : -LibC.LastErrno();
}
