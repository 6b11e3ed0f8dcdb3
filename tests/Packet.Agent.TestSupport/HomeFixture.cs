using Mono.Unix;
using Mono.Unix.Native;

namespace Packet.Agent.TestSupport;

/// <summary>
/// Builds a home as GPU images have them, with every case a faithful copy must get right: hidden
/// files, nested and private directories, symlinks (absolute, relative, dangling, looping, to a
/// directory), hard links, a FIFO, a dead socket, a sparse file, setuid and read-only entries,
/// extended attributes, and names with spaces, a newline, a leading dash, 255 bytes and bytes
/// that are not UTF-8. As root it adds a file of a uid/gid with no passwd entry and a device node.
/// </summary>
/// <remarks>
/// Times are fixed to the nanosecond, with access times in the future: reading a file then cannot
/// move its atime (relatime), so copies made one after another can be compared exactly.
/// </remarks>
public static class HomeFixture
{
    /// <summary>A name whose bytes are not UTF-8 (0xff, and the overlong 0xc0 0xaf), in Mono.Posix's escaped form.</summary>
    public const string NonUtf8Name = "bad-\0\u00ff-\0\u00c0\0\u00af.txt";

    /// <summary>A UTF-16 surrogate encoded as if it were a character (ED A0 80): not valid UTF-8 either.</summary>
    public const string SurrogateName = "surrogate-\0\u00ed\0\u00a0\0\u0080";

    public const string NewlineName = "new\nline.txt";

    public static readonly string LongName = new('n', 255);

    public static readonly Timespec OldTime = new() { tv_sec = 1_600_000_000, tv_nsec = 123_456_789 };

    public static readonly Timespec FutureAccess = new() { tv_sec = 2_000_000_000, tv_nsec = 987_654_321 };

    public static void Build(string home, bool rootOnlyEntries)
    {
        Directory.CreateDirectory(home);
        Write(home, ".bashrc", "alias ll='ls -l'\n");
        Write(home, ".profile", "[ -f ~/.bashrc ] && . ~/.bashrc\n");
        Write(home, ".config/app/settings.json", "{\"theme\": \"dark\"}\n");
        Write(home, ".ssh/id_ed25519", "PRIVATE KEY\n", mode: "600");
        Write(home, ".ssh/authorized_keys", "ssh-ed25519 AAAA user@host\n");
        Chmod(home, ".ssh", "700");
        Write(home, "empty.txt", string.Empty);
        WriteBytes(home, ".cache/weights.bin", RandomBytes(1 << 20, seed: 7));
        WriteSparse(home, "sparse.img", size: 16 << 20, dataAt: [0, 8 << 20]);
        Write(home, "name with spaces.txt", "spaces\n");
        Write(home, NewlineName, "newline\n");
        Write(home, "-leading-dash", "dash\n");
        Write(home, LongName, "long name\n");
        Write(home, NonUtf8Name, "not utf-8\n");
        Write(home, SurrogateName, "encoded surrogate\n");
        Write(home, "bin/tool", "#!/bin/sh\necho tool\n", mode: "4755");
        Write(home, "shared/sticky/file", "sticky\n");
        Chmod(home, "shared/sticky", "1777");
        Write(home, "ro/inside.txt", "read-only parent\n", mode: "444");
        Chmod(home, "ro", "555");
        Write(home, "private/notes.txt", "private\n");
        Chmod(home, "private", "700");

        Directory.CreateDirectory(Path.Join(home, "links"));
        Symlink(home, "/etc/hostname", "links/absolute");
        Symlink(home, "../.bashrc", "links/relative");
        Symlink(home, "/nonexistent/target", "links/dangling");
        Symlink(home, "loop", "links/loop");
        Symlink(home, "../.config", "links/to-directory");

        Write(home, "data/first", "hard linked\n");
        Directory.CreateDirectory(Path.Join(home, "data/sub"));
        Link(home, "data/first", "data/second");
        Link(home, "data/first", "data/sub/third");

        Directory.CreateDirectory(Path.Join(home, "run"));
        Check(Syscall.mkfifo(Path.Join(home, "run/pipe"), FilePermissions.S_IRUSR | FilePermissions.S_IWUSR));
        DeadSocket(Path.Join(home, "run/agent.sock"));

        SetXattr(home, ".bashrc", "user.comment", "persist me");
        SetXattr(home, ".config", "user.origin", "image");

        if (rootOnlyEntries)
        {
            Write(home, "stranger.txt", "owned by a uid with no passwd entry\n");
            Check(Syscall.lchown(Path.Join(home, "stranger.txt"), Platform.StrangerUid, Platform.StrangerGid));
            Check(Syscall.lchown(Path.Join(home, "links/dangling"), Platform.StrangerUid, Platform.StrangerGid));
            Check(Syscall.mknod(Path.Join(home, "run/null"), FilePermissions.S_IFCHR | FilePermissions.S_IRUSR | FilePermissions.S_IWUSR, (1UL << 8) | 3));
            SetXattr(home, "bin/tool", "trusted.note", "root only");
        }

        FixTimes(home);
    }

    public static void Write(string root, string relative, string content, string? mode = null) =>
        WriteBytes(root, relative, System.Text.Encoding.UTF8.GetBytes(content), mode);

    public static void WriteBytes(string root, string relative, byte[] content, string? mode = null)
    {
        string path = Path.Join(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        int fd = Syscall.open(path, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_TRUNC, FilePermissions.DEFFILEMODE);
        Check(fd);
        using (var stream = new UnixStream(fd, ownsHandle: true))
        {
            stream.Write(content, 0, content.Length);
        }

        if (mode is not null)
        {
            Chmod(root, relative, mode);
        }
    }

    public static void WriteSparse(string root, string relative, long size, long[] dataAt)
    {
        string path = Path.Join(root, relative);
        using var stream = new FileStream(path, FileMode.Create);
        stream.SetLength(size);
        foreach (long offset in dataAt)
        {
            stream.Position = offset;
            stream.Write(RandomBytes(64 * 1024, seed: (int)offset), 0, 64 * 1024);
        }
    }

    public static void Chmod(string root, string relative, string octalMode) =>
        Check(Syscall.chmod(Path.Join(root, relative), (FilePermissions)Convert.ToUInt32(octalMode, 8)));

    public static void Symlink(string root, string target, string relative) => Check(Syscall.symlink(target, Path.Join(root, relative)));

    public static void Link(string root, string existing, string relative) => Check(Syscall.link(Path.Join(root, existing), Path.Join(root, relative)));

    public static void SetXattr(string root, string relative, string name, string value) =>
        Check(Syscall.lsetxattr(Path.Join(root, relative), name, System.Text.Encoding.UTF8.GetBytes(value)));

    /// <summary>
    /// Creates a socket file with nothing listening: what a crashed ssh-agent or Jupyter leaves
    /// behind. (A .NET socket removes its file when disposed, so mknod makes the file directly.)
    /// </summary>
    public static void DeadSocket(string path) =>
        Check(Syscall.mknod(path, FilePermissions.S_IFSOCK | FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP, 0));

    /// <summary>Sets every entry's times, deepest first: old mtimes with nanoseconds, future atimes.</summary>
    public static void FixTimes(string root)
    {
        var paths = new List<string>();
        Collect(root, paths);
        foreach (string path in paths.OrderByDescending(p => p.Count(c => c == '/')))
        {
            Check(Syscall.utimensat(-100, path, [FutureAccess, OldTime], AtFlags.AT_SYMLINK_NOFOLLOW));
        }
    }

    public static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static void Check(int result)
    {
        if (result < 0)
        {
            throw new UnixIOException(Stdlib.GetLastError());
        }
    }

    private static void Collect(string directory, List<string> paths)
    {
        paths.Add(directory);
        var dir = Syscall.opendir(directory);
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
            string path = directory + "/" + name;
            Syscall.lstat(path, out var stat);
            if ((stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR)
            {
                Collect(path, paths);
            }
            else
            {
                paths.Add(path);
            }
        }
    }
}
