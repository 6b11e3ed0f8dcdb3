using System.Collections.Concurrent;
using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// The real POSIX adapter with faults injected where a real disk will not produce them on demand:
/// a rule sees each call (its name and the entry's name) and may answer with an errno instead.
/// </summary>
public sealed class FaultyPosix(Func<string, string?, Errno?>? fault = null) : IPosix
{
    private readonly IPosix _real = PosixSystem.Instance;
    private int _fsyncCalls;

    /// <summary>When set, the volume reports this many bytes free.</summary>
    public long? FreeBytes { get; init; }

    /// <summary>When set, the umask reads as unknown, as it does where /proc is not mounted.</summary>
    public bool CreationMaskUnknown { get; init; }

    /// <summary>Called before each data copy: a test slows the copy down with it, or changes the source.</summary>
    public Action? BeforeCopy { get; init; }

    /// <summary>Called with each name before it is opened: a test swaps the entry for something else there.</summary>
    public Action<string>? BeforeOpen { get; init; }

    /// <summary>When set, the agent's user as it would see itself (not root), while the calls still run as the test's.</summary>
    public uint? SeenAsUser { get; init; }

    public uint EffectiveUserId => SeenAsUser ?? _real.EffectiveUserId;

    public uint EffectiveGroupId => _real.EffectiveGroupId;

    public int OpenAt(int dirFd, string name, OpenFlags flags, FilePermissions mode)
    {
        BeforeOpen?.Invoke(name);
        return Fail("openat", name) ?? _real.OpenAt(dirFd, name, flags, mode);
    }

    public int Close(int fd) => _real.Close(fd);

    /// <summary>When set, what fstat shows is passed through it: a volume that shows other than what was set (exfat's 0777).</summary>
    public Func<Stat, Stat>? Shows { get; init; }

    public int FStat(int fd, out Stat stat)
    {
        int result = _real.FStat(fd, out stat);
        if (result >= 0 && Shows is { } shows)
        {
            stat = shows(stat);
        }

        return result;
    }

    public int LStatAt(int dirFd, string name, out Stat stat)
    {
        if (Fail("lstatat", name) is { } failed)
        {
            stat = default;
            return failed;
        }

        return _real.LStatAt(dirFd, name, out stat);
    }

    public int MkdirAt(int dirFd, string name, FilePermissions mode) => Fail("mkdirat", name) ?? _real.MkdirAt(dirFd, name, mode);

    public int MkfifoAt(int dirFd, string name, FilePermissions mode) => Fail("mkfifoat", name) ?? _real.MkfifoAt(dirFd, name, mode);

    public int SymlinkAt(string target, int dirFd, string name) => Fail("symlinkat", name) ?? _real.SymlinkAt(target, dirFd, name);

    public int ReadLinkAt(int dirFd, string name, out string target) => _real.ReadLinkAt(dirFd, name, out target);

    public int LinkAt(int oldDirFd, string oldName, int newDirFd, string newName) => Fail("linkat", newName) ?? _real.LinkAt(oldDirFd, oldName, newDirFd, newName);

    public int RenameAt(int oldDirFd, string oldName, int newDirFd, string newName, bool noReplace) =>
        (noReplace ? Fail("renameat2", newName) : Fail("renameat", newName)) ?? _real.RenameAt(oldDirFd, oldName, newDirFd, newName, noReplace);

    public int UnlinkAt(int dirFd, string name, bool isDirectory) => _real.UnlinkAt(dirFd, name, isDirectory);

    public int FChown(int fd, uint uid, uint gid) => Fail("fchown", null) ?? _real.FChown(fd, uid, gid);

    public int LChownAt(int dirFd, string name, uint uid, uint gid) => Fail("lchownat", name) ?? _real.LChownAt(dirFd, name, uid, gid);

    public int FChmod(int fd, FilePermissions mode) => Fail("fchmod", null) ?? _real.FChmod(fd, mode);

    public int ChmodAt(int dirFd, string name, FilePermissions mode) => _real.ChmodAt(dirFd, name, mode);

    public FilePermissions? ReadFileCreationMask() => CreationMaskUnknown ? null : _real.ReadFileCreationMask();

    public int FUtimens(int fd, in Stat times) => Fail("futimens", null) ?? _real.FUtimens(fd, times);

    public int LUtimensAt(int dirFd, string name, in Stat times) => _real.LUtimensAt(dirFd, name, times);

    public long FListXattr(int fd, byte[] buffer) => _real.FListXattr(fd, buffer);

    public long FGetXattr(int fd, string name, byte[] buffer) => _real.FGetXattr(fd, name, buffer);

    public int FSetXattr(int fd, string name, byte[] value, int length) => Fail("fsetxattr", name) ?? _real.FSetXattr(fd, name, value, length);

    public long CopyFileRange(int inFd, long inOffset, int outFd, long outOffset, long length)
    {
        BeforeCopy?.Invoke();
        return Fail("copy_file_range", null) ?? _real.CopyFileRange(inFd, inOffset, outFd, outOffset, length);
    }

    public long SendFile(int outFd, int inFd, long inOffset, long length) => Fail("sendfile", null) ?? _real.SendFile(outFd, inFd, inOffset, length);

    /// <summary>When set, reads end at this offset, as when a file is truncated while it is read.</summary>
    public long? ReadsEndAt { get; init; }

    public long PRead(int fd, Span<byte> buffer, long offset) =>
        Fail("pread", null)
        ?? (ReadsEndAt is { } end
            ? (offset >= end ? 0 : _real.PRead(fd, buffer[..(int)Math.Min(buffer.Length, end - offset)], offset))
            : _real.PRead(fd, buffer, offset));

    public long Write(int fd, ReadOnlySpan<byte> buffer) => Fail("write", null) ?? _real.Write(fd, buffer);

    public long PWrite(int fd, ReadOnlySpan<byte> buffer, long offset) => Fail("pwrite", null) ?? _real.PWrite(fd, buffer, offset);

    public long LSeek(int fd, long offset, int whence) => _real.LSeek(fd, offset, whence);

    public int FTruncate(int fd, long length) => _real.FTruncate(fd, length);

    /// <summary>Each getdents call: the descriptor and the managed thread that made it.</summary>
    public ConcurrentBag<(int Fd, int Thread)> Listings { get; } = [];

    public int GetDents(int fd, Span<byte> buffer)
    {
        Listings.Add((fd, Environment.CurrentManagedThreadId));
        return Fail("getdents", null) ?? _real.GetDents(fd, buffer);
    }

    /// <summary>How many fsync calls were made (any descriptor).</summary>
    public int FSyncCalls => Volatile.Read(ref _fsyncCalls);

    public int FSync(int fd)
    {
        Interlocked.Increment(ref _fsyncCalls);
        return Fail("fsync", null) ?? _real.FSync(fd);
    }

    public int SyncFs(int fd) => Fail("syncfs", null) ?? _real.SyncFs(fd);

    public long FileSystemType(int fd) => _real.FileSystemType(fd);

    /// <summary>The ranges whose writeback was started early, in bytes each.</summary>
    public ConcurrentBag<long> WritebackStarted { get; } = [];

    public int StartWriteback(int fd, long offset, long length)
    {
        WritebackStarted.Add(length);
        return _real.StartWriteback(fd, offset, length);
    }

    /// <summary>When set, the volume reports this many inodes free; zero total inodes is a volume without an inode limit (btrfs).</summary>
    public (ulong Total, ulong Free)? Inodes { get; init; }

    public int FStatVfs(int fd, out Statvfs stat)
    {
        int result = _real.FStatVfs(fd, out stat);
        if (FreeBytes is { } free)
        {
            stat.f_bavail = (ulong)free / stat.f_frsize;
        }

        if (Inodes is { } inodes)
        {
            (stat.f_files, stat.f_favail) = inodes;
        }

        return result;
    }

    public int Flock(int fd, int operation) => _real.Flock(fd, operation);

    public int Kill(int pid, int signal) => _real.Kill(pid, signal);

    public int AccessAt(int dirFd, string name, int mode) => _real.AccessAt(dirFd, name, mode);

    private int? Fail(string call, string? name) => fault?.Invoke(call, name) is { } errno ? -(int)errno : null;
}
