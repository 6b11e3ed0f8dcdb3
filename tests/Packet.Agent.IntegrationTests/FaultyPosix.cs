using System.Collections.Concurrent;
using System.Globalization;
using Mono.Unix;
using Mono.Unix.Native;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// The real POSIX adapter with faults injected where a real disk will not produce them on demand:
/// a rule sees each call (its name and the entry's name) and may answer with an errno instead.
/// Confined as well: every call that would change something outside the tests' own trees
/// (<see cref="TempDirectory.IsTestTree"/>) is refused before it is made, by an exception no code
/// under test catches (so the test fails, naming the path), and no signal goes to init, to every
/// process or to the test itself. The
/// integration tests use it instead of the bare adapter, so that code made wrong on purpose (a
/// mutation run) cannot reach the machine: one such mutant once emptied /root.
/// </summary>
public sealed class FaultyPosix(Func<string, string?, Errno?>? fault = null) : IPosix
{
    private const int AtCurrentDirectory = -100;
    private const OpenFlags Writes = OpenFlags.O_WRONLY | OpenFlags.O_RDWR | OpenFlags.O_CREAT | OpenFlags.O_TRUNC;

    // Descriptors opened through any instance, by path: a tree deeper than PATH_MAX has no /proc answer.
    private static readonly ConcurrentDictionary<int, string> OpenedPaths = new();

    // Which open a descriptor number stands for now: numbers are reused once closed.
    private static readonly ConcurrentDictionary<int, long> Opens = new();
    private static long _openCount;

    private readonly IPosix _real = PosixSystem.Instance;
    private readonly ConcurrentQueue<string> _fsynced = new();
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
        // A rule may name "create" to fail only the opens that create (the copy's side, not the home's).
        int fd = ((flags & OpenFlags.O_CREAT) != 0 ? Fail("create", name) : null) ?? Fail("openat", name)
            ?? ((flags & Writes) != 0 ? Outside("openat", dirFd, name) : null) ?? _real.OpenAt(dirFd, name, flags, mode);
        if (fd >= 0)
        {
            OpenedPaths[fd] = PathOf(dirFd, name);
            Opens[fd] = Interlocked.Increment(ref _openCount);
        }

        return fd;
    }

    public int Close(int fd)
    {
        OpenedPaths.TryRemove(fd, out _);
        return _real.Close(fd);
    }

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

    public int MkdirAt(int dirFd, string name, FilePermissions mode) => Fail("mkdirat", name) ?? Outside("mkdirat", dirFd, name) ?? _real.MkdirAt(dirFd, name, mode);

    public int MkfifoAt(int dirFd, string name, FilePermissions mode) => Fail("mkfifoat", name) ?? Outside("mkfifoat", dirFd, name) ?? _real.MkfifoAt(dirFd, name, mode);

    public int SymlinkAt(string target, int dirFd, string name) => Fail("symlinkat", name) ?? Outside("symlinkat", dirFd, name) ?? _real.SymlinkAt(target, dirFd, name);

    public int ReadLinkAt(int dirFd, string name, out string target) => _real.ReadLinkAt(dirFd, name, out target);

    public int LinkAt(int oldDirFd, string oldName, int newDirFd, string newName) => Fail("linkat", newName) ?? Outside("linkat", newDirFd, newName) ?? _real.LinkAt(oldDirFd, oldName, newDirFd, newName);

    public int RenameAt(int oldDirFd, string oldName, int newDirFd, string newName, bool noReplace) =>
        (noReplace ? Fail("renameat2", newName) : Fail("renameat", newName)) ?? Outside("renameat", oldDirFd, oldName) ?? Outside("renameat", newDirFd, newName)
        ?? _real.RenameAt(oldDirFd, oldName, newDirFd, newName, noReplace);

    public int UnlinkAt(int dirFd, string name, bool isDirectory) => Fail("unlinkat", name) ?? Outside("unlinkat", dirFd, name) ?? _real.UnlinkAt(dirFd, name, isDirectory);

    public int FChown(int fd, uint uid, uint gid) => Fail("fchown", null) ?? Outside("fchown", fd) ?? _real.FChown(fd, uid, gid);

    public int LChownAt(int dirFd, string name, uint uid, uint gid) => Fail("lchownat", name) ?? Outside("lchownat", dirFd, name) ?? _real.LChownAt(dirFd, name, uid, gid);

    public int FChmod(int fd, FilePermissions mode) => Fail("fchmod", null) ?? Outside("fchmod", fd) ?? _real.FChmod(fd, mode);

    public FilePermissions? ReadFileCreationMask() => CreationMaskUnknown ? null : _real.ReadFileCreationMask();

    public int FUtimens(int fd, in Stat times) => Fail("futimens", null) ?? Outside("futimens", fd) ?? _real.FUtimens(fd, times);

    public int LUtimensAt(int dirFd, string name, in Stat times) => Outside("utimensat", dirFd, name) ?? _real.LUtimensAt(dirFd, name, times);

    public long FListXattr(int fd, byte[] buffer) => Fail("flistxattr", null) ?? _real.FListXattr(fd, buffer);

    public long FGetXattr(int fd, string name, byte[] buffer) => Fail("fgetxattr", name) ?? _real.FGetXattr(fd, name, buffer);

    public int FSetXattr(int fd, string name, byte[] value, int length) => Fail("fsetxattr", name) ?? Outside("fsetxattr", fd) ?? _real.FSetXattr(fd, name, value, length);

    public long CopyFileRange(int inFd, long inOffset, int outFd, long outOffset, long length)
    {
        BeforeCopy?.Invoke();
        return Fail("copy_file_range", NameOf(inFd)) ?? Outside("copy_file_range", outFd) ?? _real.CopyFileRange(inFd, inOffset, outFd, outOffset, length);
    }

    public long SendFile(int outFd, int inFd, long inOffset, long length) => Fail("sendfile", null) ?? Outside("sendfile", outFd) ?? _real.SendFile(outFd, inFd, inOffset, length);

    /// <summary>When set, reads end at this offset, as when a file is truncated while it is read.</summary>
    public long? ReadsEndAt { get; init; }

    /// <summary>The name a fault sees for pread and copy_file_range is the name the file being read was opened by.</summary>
    public long PRead(int fd, Span<byte> buffer, long offset) =>
        Fail("pread", NameOf(fd))
        ?? (ReadsEndAt is { } end
            ? (offset >= end ? 0 : _real.PRead(fd, buffer[..(int)Math.Min(buffer.Length, end - offset)], offset))
            : _real.PRead(fd, buffer, offset));

    public long Write(int fd, ReadOnlySpan<byte> buffer) => Fail("write", null) ?? Outside("write", fd) ?? _real.Write(fd, buffer);

    /// <summary>When set, each pwrite writes at most this many bytes, as a short write does.</summary>
    public int? WritesAtMost { get; init; }

    public long PWrite(int fd, ReadOnlySpan<byte> buffer, long offset) =>
        Fail("pwrite", null) ?? Outside("pwrite", fd) ?? _real.PWrite(fd, WritesAtMost is { } most ? buffer[..Math.Min(buffer.Length, most)] : buffer, offset);

    /// <summary>The name a fault sees for lseek is its whence: SEEK_SET, SEEK_DATA or SEEK_HOLE.</summary>
    public long LSeek(int fd, long offset, int whence) =>
        Fail("lseek", whence switch { 0 => "SEEK_SET", LibC.SEEK_DATA => "SEEK_DATA", LibC.SEEK_HOLE => "SEEK_HOLE", _ => whence.ToString(CultureInfo.InvariantCulture) })
        ?? _real.LSeek(fd, offset, whence);

    public int FTruncate(int fd, long length) => Fail("ftruncate", null) ?? Outside("ftruncate", fd) ?? _real.FTruncate(fd, length);

    /// <summary>Each getdents call: the descriptor, which open of that number it was (0: not opened here), and the managed thread that made it.</summary>
    public ConcurrentBag<(int Fd, long Open, int Thread)> Listings { get; } = [];

    /// <summary>When set, listings give no entry types (DT_UNKNOWN), as XFS without ftype and some FUSE file systems do.</summary>
    public bool UnknownTypes { get; init; }

    public int GetDents(int fd, Span<byte> buffer)
    {
        Listings.Add((fd, Opens.GetValueOrDefault(fd), Environment.CurrentManagedThreadId));
        int listed = Fail("getdents", null) ?? _real.GetDents(fd, buffer);
        if (UnknownTypes)
        {
            // linux_dirent64: d_reclen (u16) at 16, d_type (u8) at 18.
            for (int record = 0; record < listed; record += BitConverter.ToUInt16(buffer[(record + 16)..]))
            {
                buffer[record + 18] = DirectoryReader.DT_UNKNOWN;
            }
        }

        return listed;
    }

    /// <summary>How many fsync calls were made (any descriptor).</summary>
    public int FSyncCalls => Volatile.Read(ref _fsyncCalls);

    /// <summary>What each fsync call was given, by the path its descriptor had then.</summary>
    public IReadOnlyList<string> FSynced => [.. _fsynced];

    public int FSync(int fd)
    {
        Interlocked.Increment(ref _fsyncCalls);
        _fsynced.Enqueue(UnixPath.TryReadLink($"/proc/self/fd/{fd}") ?? $"descriptor {fd}");
        return Fail("fsync", null) ?? _real.FSync(fd);
    }

    public int SyncFs(int fd) => Fail("syncfs", null) ?? _real.SyncFs(fd);

    public long FileSystemType(int fd) => _real.FileSystemType(fd);

    /// <summary>The ranges whose writeback was started early, in bytes.</summary>
    public ConcurrentBag<(long Offset, long Length)> WritebackStarted { get; } = [];

    public int StartWriteback(int fd, long offset, long length)
    {
        WritebackStarted.Add((offset, length));
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

    public int Flock(int fd, int operation) => Fail("flock", null) ?? _real.Flock(fd, operation);

    public int Kill(int pid, int signal) =>
        signal != 0 && (pid is -1 or 0 or 1 || Math.Abs(pid) == Environment.ProcessId) ? Escaped($"kill({pid}, {signal})") : _real.Kill(pid, signal);

    public int AccessAt(int dirFd, string name, int mode) => _real.AccessAt(dirFd, name, mode);

    /// <summary>How many times each call that a fault can fail was made.</summary>
    public ConcurrentDictionary<string, int> Calls { get; } = new(StringComparer.Ordinal);

    public int CallsOf(string call) => Calls.GetValueOrDefault(call);

    private int? Fail(string call, string? name)
    {
        Calls.AddOrUpdate(call, 1, (_, count) => count + 1);
        return fault?.Invoke(call, name) is { } errno ? -(int)errno : null;
    }

    /// <summary>Refuses a change at <paramref name="name"/> (relative to <paramref name="dirFd"/>) outside every test tree.</summary>
    private static int? Outside(string call, int dirFd, string name)
    {
        string path = PathOf(dirFd, name);
        return TempDirectory.IsTestTree(path) ? null : Escaped($"{call} {path}");
    }

    private static string? NameOf(int fd) => OpenedPaths.TryGetValue(fd, out string? path) ? Path.GetFileName(path) : null;

    /// <summary>The absolute path a call names: <paramref name="name"/> relative to the directory <paramref name="dirFd"/> is open on.</summary>
    internal static string PathOf(int dirFd, string name) =>
        Path.Combine(dirFd == AtCurrentDirectory ? Environment.CurrentDirectory : DescriptorPath(dirFd) ?? string.Empty, name);

    /// <summary>The same for a change through a descriptor: one open on a path outside every test tree (pipes and terminals pass).</summary>
    private static int? Outside(string call, int fd) =>
        DescriptorPath(fd) is { } path && path.StartsWith('/') && !path.StartsWith("/dev/", StringComparison.Ordinal) && !TempDirectory.IsTestTree(path)
            ? Escaped($"{call} {path}")
            : null;

    /// <summary>
    /// What a descriptor names: the kernel's answer, or (past PATH_MAX, where /proc cannot answer)
    /// the path it was opened at through this adapter.
    /// </summary>
    internal static string? DescriptorPath(int fd)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{fd}").LinkTarget ?? OpenedPaths.GetValueOrDefault(fd);
        }
        catch (IOException)
        {
            return OpenedPaths.GetValueOrDefault(fd);
        }
    }

    private static int Escaped(string what) => throw new TestEscapeException(what);
}

/// <summary>The code under test tried to change something outside the tests' own trees; not an IOException, so nothing handles it.</summary>
public sealed class TestEscapeException(string what)
    : Exception($"refused, outside every test's tree: {what}");
