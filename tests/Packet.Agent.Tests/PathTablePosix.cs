using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Tests;

/// <summary>
/// An <see cref="IPosix"/> over an in-memory table of absolute paths, for unit tests of code that
/// decides by path (the live home, the guard, status): it answers lstat, readlink, access, open
/// and pread (files hold text), statvfs, rename, symlink and kill(pid, 0) from the table and records every
/// change, so a wrong decision shows up in <see cref="Changes"/> and never on the machine. Every
/// other call is refused with ENOSYS and listed in <see cref="Refused"/>.
/// </summary>
internal sealed class PathTablePosix(uint effectiveUserId = 0) : IPosix
{
    private const int AtCurrentDirectory = -100;
    private readonly Dictionary<string, (FilePermissions Type, ulong Inode, string? Target, uint Uid, uint Gid, FilePermissions Mode)> _entries = new(StringComparer.Ordinal);
    private readonly HashSet<string> _writable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _content = new(StringComparer.Ordinal);
    private readonly Dictionary<int, string> _open = [];
    private ulong _nextInode = 100;
    private int _nextFd = 1000;

    public List<string> Changes { get; } = [];

    public List<string> Refused { get; } = [];

    public uint EffectiveUserId => effectiveUserId;

    public uint EffectiveGroupId => effectiveUserId;

    /// <summary>A directory; <paramref name="writable"/> says whether this process may write it (access(2)).</summary>
    public PathTablePosix Directory(string path, uint uid = 0, uint gid = 0, string mode = "755", bool writable = true)
    {
        _entries[path] = (FilePermissions.S_IFDIR, _nextInode++, null, uid, gid, (FilePermissions)Convert.ToUInt32(mode, 8));
        if (writable)
        {
            _writable.Add(path);
        }

        return this;
    }

    /// <summary>What statvfs answers for every descriptor: sizes in bytes.</summary>
    public (long Free, long Total) Volume { get; set; } = (10L << 30, 100L << 30);

    public PathTablePosix File(string path, string content = "")
    {
        _entries[path] = (FilePermissions.S_IFREG, _nextInode++, null, 0, 0, (FilePermissions)Convert.ToUInt32("644", 8));
        _content[path] = System.Text.Encoding.UTF8.GetBytes(content);
        return this;
    }

    public PathTablePosix Symlink(string path, string target)
    {
        _entries[path] = (FilePermissions.S_IFLNK, _nextInode++, target, 0, 0, (FilePermissions)Convert.ToUInt32("777", 8));
        return this;
    }

    public bool Exists(string path) => _entries.ContainsKey(path);

    public string? LinkTarget(string path) => _entries.TryGetValue(path, out var entry) ? entry.Target : null;

    public int LStatAt(int dirFd, string name, out Stat stat)
    {
        stat = default;
        if (Resolve(dirFd, name) is not { } path)
        {
            return Refuse($"lstat relative to fd {dirFd}");
        }

        if (!_entries.TryGetValue(path, out var entry))
        {
            return -(int)Errno.ENOENT;
        }

        stat.st_mode = entry.Type | entry.Mode;
        stat.st_uid = entry.Uid;
        stat.st_gid = entry.Gid;
        stat.st_ino = entry.Inode;
        stat.st_dev = 1;
        stat.st_size = _content.TryGetValue(path, out var content) ? content.Length : 0;
        return 0;
    }

    public int ReadLinkAt(int dirFd, string name, out string target)
    {
        target = string.Empty;
        if (Resolve(dirFd, name) is not { } path || !_entries.TryGetValue(path, out var entry) || entry.Target is null)
        {
            return -(int)Errno.EINVAL;
        }

        target = entry.Target;
        return 0;
    }

    public int RenameAt(int oldDirFd, string oldName, int newDirFd, string newName, bool noReplace)
    {
        if (oldDirFd != AtCurrentDirectory || newDirFd != AtCurrentDirectory)
        {
            return Refuse($"rename {oldName} relative to a descriptor");
        }

        if (!_entries.Remove(oldName, out var entry))
        {
            return -(int)Errno.ENOENT;
        }

        if (noReplace && _entries.ContainsKey(newName))
        {
            _entries[oldName] = entry;
            return -(int)Errno.EEXIST;
        }

        _entries[newName] = entry;
        Changes.Add($"rename {oldName} -> {newName}");
        return 0;
    }

    public int SymlinkAt(string target, int dirFd, string name)
    {
        if (dirFd != AtCurrentDirectory)
        {
            return Refuse($"symlink {name} relative to fd {dirFd}");
        }

        if (_entries.ContainsKey(name))
        {
            return -(int)Errno.EEXIST;
        }

        Symlink(name, target);
        Changes.Add($"symlink {name} -> {target}");
        return 0;
    }

    /// <summary>Opens a directory of the table (a descriptor the other calls resolve names against) or a file to read; anything else is refused.</summary>
    public int OpenAt(int dirFd, string name, OpenFlags flags, FilePermissions mode)
    {
        if (Resolve(dirFd, name) is not { } path || (flags & OpenFlags.O_CREAT) != 0)
        {
            return Refuse($"open {name}");
        }

        if (!_entries.TryGetValue(path, out var entry))
        {
            return -(int)Errno.ENOENT;
        }

        if (entry.Type != FilePermissions.S_IFDIR)
        {
            bool readable = entry.Type == FilePermissions.S_IFREG && (flags & (OpenFlags.O_WRONLY | OpenFlags.O_RDWR)) == 0;
            return entry.Type == FilePermissions.S_IFLNK && (flags & OpenFlags.O_NOFOLLOW) != 0 ? -(int)Errno.ELOOP
                : (flags & OpenFlags.O_DIRECTORY) != 0 ? -(int)Errno.ENOTDIR
                : readable ? Opened(path)
                : Refuse($"open {name}");
        }

        return Opened(path);
    }

    private int Opened(string path)
    {
        _open[_nextFd] = path;
        return _nextFd++;
    }

    public int Close(int fd) => _open.Remove(fd) ? 0 : Refuse($"close {fd}");

    public int FStat(int fd, out Stat stat) => _open.TryGetValue(fd, out var path) ? LStatAt(AtCurrentDirectory, path, out stat) : Fail(fd, out stat);

    public int MkdirAt(int dirFd, string name, FilePermissions mode) => Refuse($"mkdir {name}");

    public int MkfifoAt(int dirFd, string name, FilePermissions mode) => Refuse($"mkfifo {name}");

    public int LinkAt(int oldDirFd, string oldName, int newDirFd, string newName) => Refuse($"link {oldName}");

    public int UnlinkAt(int dirFd, string name, bool isDirectory) => Refuse($"unlink {name}");

    public int FChown(int fd, uint uid, uint gid) => Refuse($"fchown {fd}");

    public int LChownAt(int dirFd, string name, uint uid, uint gid) => Refuse($"lchown {name}");

    public int FChmod(int fd, FilePermissions mode) => Refuse($"fchmod {fd}");

    public FilePermissions? ReadFileCreationMask() => null;

    public int FUtimens(int fd, in Stat times) => Refuse($"futimens {fd}");

    public int LUtimensAt(int dirFd, string name, in Stat times) => Refuse($"utimensat {name}");

    public long FListXattr(int fd, byte[] buffer) => Refuse($"flistxattr {fd}");

    public long FGetXattr(int fd, string name, byte[] buffer) => Refuse($"fgetxattr {name}");

    public int FSetXattr(int fd, string name, byte[] value, int length) => Refuse($"fsetxattr {name}");

    public long CopyFileRange(int inFd, long inOffset, int outFd, long outOffset, long length) => Refuse("copy_file_range");

    public long SendFile(int outFd, int inFd, long inOffset, long length) => Refuse("sendfile");

    public long PRead(int fd, Span<byte> buffer, long offset)
    {
        if (!_open.TryGetValue(fd, out var path) || !_content.TryGetValue(path, out var content))
        {
            return Refuse($"pread {fd}");
        }

        int count = (int)Math.Clamp(content.Length - offset, 0, buffer.Length);
        content.AsSpan((int)offset, count).CopyTo(buffer);
        return count;
    }

    public long Write(int fd, ReadOnlySpan<byte> buffer) => Refuse($"write {fd}");

    public long PWrite(int fd, ReadOnlySpan<byte> buffer, long offset) => Refuse($"pwrite {fd}");

    public long LSeek(int fd, long offset, int whence) => Refuse($"lseek {fd}");

    public int FTruncate(int fd, long length) => Refuse($"ftruncate {fd}");

    public int GetDents(int fd, Span<byte> buffer) => Refuse($"getdents {fd}");

    public int FSync(int fd) => Refuse($"fsync {fd}");

    public int SyncFs(int fd) => Refuse($"syncfs {fd}");

    public long FileSystemType(int fd) => Refuse($"fstatfs {fd}");

    public int StartWriteback(int fd, long offset, long length) => Refuse($"sync_file_range {fd}");

    public int FStatVfs(int fd, out Statvfs stat)
    {
        const ulong Block = 4096;
        stat = default;
        if (!_open.ContainsKey(fd))
        {
            return Refuse($"fstatvfs {fd}");
        }

        stat.f_frsize = Block;
        stat.f_bsize = Block;
        stat.f_bavail = (ulong)Volume.Free / Block;
        stat.f_blocks = (ulong)Volume.Total / Block;
        return 0;
    }

    public int Flock(int fd, int operation) => Refuse($"flock {fd}");

    /// <summary>Processes that answer a signal 0 (kill(2) with no signal: does the process exist).</summary>
    public HashSet<int> Running { get; } = [];

    public int Kill(int pid, int signal) =>
        signal != 0 ? Refuse($"kill {pid} {signal}") : Running.Contains(pid) ? 0 : -(int)Errno.ESRCH;

    public int AccessAt(int dirFd, string name, int mode) =>
        Resolve(dirFd, name) is not { } path ? Refuse($"access {name} relative to fd {dirFd}")
        : !_entries.ContainsKey(path) ? -(int)Errno.ENOENT
        : _writable.Contains(path) ? 0 : -(int)Errno.EACCES;

    /// <summary>The table's path for a name: absolute from the current directory, or under an open directory.</summary>
    private string? Resolve(int dirFd, string name)
    {
        if (dirFd == AtCurrentDirectory)
        {
            return name;
        }

        if (!_open.TryGetValue(dirFd, out var directory))
        {
            return null;
        }

        return name == "." ? directory : directory.TrimEnd('/') + "/" + name;
    }

    private int Fail(int fd, out Stat stat)
    {
        stat = default;
        return Refuse($"fstat {fd}");
    }

    private int Refuse(string call)
    {
        Refused.Add(call);
        return -(int)Errno.ENOSYS;
    }
}
