using System.Security.Cryptography;
using System.Text;
using Mono.Unix;
using Mono.Unix.Native;

namespace Packet.Agent.TestSupport;

/// <summary>Everything a faithful copy must reproduce about one entry.</summary>
public sealed record EntrySnapshot(
    string Path,
    FilePermissions Type,
    FilePermissions Mode,
    uint Uid,
    uint Gid,
    long Size,
    long MtimeSeconds,
    long MtimeNanoseconds,
    long AtimeSeconds,
    long AtimeNanoseconds,
    string? LinkTarget,
    string? ContentHash,
    string Xattrs,
    bool Sparse,
    ulong Inode,
    ulong Links,
    ulong DeviceNumber);

/// <summary>What to leave out of a comparison.</summary>
[Flags]
public enum Ignore
{
    None = 0,
    AccessTimes = 1,
    Ownership = 2,
    RootTimes = 4,
    Xattrs = 8,
}

/// <summary>
/// A tree read entry by entry through descriptors (names byte-exact, depth past PATH_MAX), compared
/// with another: the way tests hold the agent's copy against <c>cp -a</c>'s.
/// </summary>
public sealed class TreeSnapshot
{
    private TreeSnapshot(Dictionary<string, EntrySnapshot> entries)
    {
        Entries = entries;
    }

    public IReadOnlyDictionary<string, EntrySnapshot> Entries { get; }

    public EntrySnapshot this[string path] => Entries[path];

    public static TreeSnapshot Take(string root)
    {
        var entries = new Dictionary<string, EntrySnapshot>(StringComparer.Ordinal);
        int fd = Syscall.open(root, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC);
        if (fd < 0)
        {
            throw new UnixIOException(Stdlib.GetLastError());
        }

        Syscall.fstat(fd, out var rootStat);
        entries[string.Empty] = Describe(string.Empty, rootStat, null, null, Xattrs(fd));
        Walk(fd, string.Empty, entries);
        Syscall.close(fd);
        return new TreeSnapshot(entries);
    }

    /// <summary>The differences between two trees, one line each (empty when they match).</summary>
    public IReadOnlyList<string> DifferencesFrom(TreeSnapshot other, Ignore ignore = Ignore.None, Func<string, bool>? include = null)
    {
        include ??= _ => true;
        var differences = new List<string>();
        var mine = Entries.Keys.Where(include).ToHashSet(StringComparer.Ordinal);
        var theirs = other.Entries.Keys.Where(include).ToHashSet(StringComparer.Ordinal);
        foreach (string path in mine.Except(theirs).Order(StringComparer.Ordinal))
        {
            differences.Add($"only in this tree: {Show(path)}");
        }

        foreach (string path in theirs.Except(mine).Order(StringComparer.Ordinal))
        {
            differences.Add($"only in the other tree: {Show(path)}");
        }

        foreach (string path in mine.Intersect(theirs).Order(StringComparer.Ordinal))
        {
            var a = Entries[path];
            var b = other.Entries[path];
            void Check(string field, object? x, object? y)
            {
                if (!Equals(x, y))
                {
                    differences.Add($"{Show(path)}: {field} {x} != {y}");
                }
            }

            Check("type", a.Type, b.Type);
            Check("mode", a.Mode, b.Mode);
            if (!ignore.HasFlag(Ignore.Ownership))
            {
                Check("owner", $"{a.Uid}:{a.Gid}", $"{b.Uid}:{b.Gid}");
            }

            bool times = path.Length > 0 || !ignore.HasFlag(Ignore.RootTimes);
            if (times && a.Type != FilePermissions.S_IFLNK)
            {
                Check("mtime", $"{a.MtimeSeconds}.{a.MtimeNanoseconds:D9}", $"{b.MtimeSeconds}.{b.MtimeNanoseconds:D9}");
                if (!ignore.HasFlag(Ignore.AccessTimes))
                {
                    Check("atime", $"{a.AtimeSeconds}.{a.AtimeNanoseconds:D9}", $"{b.AtimeSeconds}.{b.AtimeNanoseconds:D9}");
                }
            }

            if (a.Type != FilePermissions.S_IFDIR)
            {
                Check("size", a.Size, b.Size);
            }

            Check("link target", a.LinkTarget, b.LinkTarget);
            Check("content", a.ContentHash, b.ContentHash);
            Check("sparse", a.Sparse, b.Sparse);
            if (!ignore.HasFlag(Ignore.Xattrs))
            {
                Check("xattrs", a.Xattrs, b.Xattrs);
            }

            Check("hard link group", LinkGroup(a), other.LinkGroup(b));
        }

        return differences;
    }

    /// <summary>The first path (in order) that shares this entry's inode: equal groups mean equal hard-link structure.</summary>
    public string LinkGroup(EntrySnapshot entry) =>
        entry.Links > 1 && entry.Type != FilePermissions.S_IFDIR
            ? Entries.Values.Where(e => e.Inode == entry.Inode).Select(e => e.Path).Order(StringComparer.Ordinal).First()
            : entry.Path;

    public static string Show(string path) => path.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\0", "\\0", StringComparison.Ordinal);

    private static void Walk(int dirFd, string prefix, Dictionary<string, EntrySnapshot> entries)
    {
        int listFd = Syscall.dup(dirFd);
        var dir = Syscall.fdopendir(listFd);
        var names = new List<string>();
        Dirent? entry;
        while ((entry = Syscall.readdir(dir)) is not null)
        {
            if (entry.d_name is not ("." or ".."))
            {
                names.Add(entry.d_name);
            }
        }

        Syscall.closedir(dir);
        foreach (string name in names)
        {
            string path = prefix.Length == 0 ? name : prefix + "/" + name;
            Syscall.fstatat(dirFd, name, out var stat, AtFlags.AT_SYMLINK_NOFOLLOW);
            var type = stat.st_mode & FilePermissions.S_IFMT;
            string? target = null;
            string? hash = null;
            string xattrs = string.Empty;
            if (type == FilePermissions.S_IFLNK)
            {
                var buffer = new byte[4096];
                long length = Syscall.readlinkat(dirFd, name, buffer);
                target = UnixEncoding.Instance.GetString(buffer, 0, (int)length);
            }
            else if (type is FilePermissions.S_IFREG or FilePermissions.S_IFDIR)
            {
                var flags = OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC | (type == FilePermissions.S_IFDIR ? OpenFlags.O_DIRECTORY : 0);
                int fd = Syscall.openat(dirFd, name, flags);
                if (fd >= 0)
                {
                    xattrs = Xattrs(fd);
                    if (type == FilePermissions.S_IFREG)
                    {
                        hash = Hash(fd);
                    }
                    else
                    {
                        entries[path] = Describe(path, stat, target, hash, xattrs);
                        Walk(fd, path, entries);
                        Syscall.close(fd);
                        continue;
                    }

                    Syscall.close(fd);
                }
            }

            entries[path] = Describe(path, stat, target, hash, xattrs);
        }
    }

    private static EntrySnapshot Describe(string path, Stat stat, string? target, string? hash, string xattrs) => new(
        path,
        stat.st_mode & FilePermissions.S_IFMT,
        stat.st_mode & FilePermissions.ALLPERMS,
        stat.st_uid,
        stat.st_gid,
        stat.st_size,
        stat.st_mtime,
        stat.st_mtime_nsec,
        stat.st_atime,
        stat.st_atime_nsec,
        target,
        hash,
        xattrs,
        (stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFREG && stat.st_size > 0 && stat.st_blocks * 512 < stat.st_size,
        stat.st_ino,
        stat.st_nlink,
        stat.st_rdev);

    private static unsafe string Hash(int fd)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        long offset = 0;
        while (true)
        {
            long read;
            fixed (byte* p = buffer)
            {
                read = Syscall.pread(fd, p, (ulong)buffer.Length, offset);
            }

            if (read <= 0)
            {
                break;
            }

            sha.AppendData(buffer, 0, (int)read);
            offset += read;
        }

        return Convert.ToHexString(sha.GetHashAndReset());
    }

    private static string Xattrs(int fd)
    {
        if (Syscall.flistxattr(fd, out string[] names) < 0 || names.Length == 0)
        {
            return string.Empty;
        }

        var text = new StringBuilder();
        foreach (string name in names.Order(StringComparer.Ordinal))
        {
            Syscall.fgetxattr(fd, name, out byte[] value);
            text.Append(name).Append('=').Append(Convert.ToHexString(value ?? [])).Append(';');
        }

        return text.ToString();
    }
}
