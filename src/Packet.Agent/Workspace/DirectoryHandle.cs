using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Workspace;

/// <summary>
/// An open directory inside the workspace. Everything below it is reached by name relative to its
/// descriptor with O_NOFOLLOW: the volume is writable by users and the agent often runs as root, so
/// a symlink planted at <c>home</c>, <c>.bashrc</c> or <c>bin</c> must never redirect a write.
/// </summary>
public sealed class DirectoryHandle : IDisposable
{
    private const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC;

    private readonly IPosix _posix;
    private int _fd;

    private DirectoryHandle(IPosix posix, int fd, string path, VolumeTrust trust)
    {
        _posix = posix;
        _fd = fd;
        Path = path;
        Trust = trust;
    }

    public int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(Path);

    /// <summary>The directory's path, for messages.</summary>
    public string Path { get; }

    /// <summary>Whom the agent trusts on this directory's volume; what the guard found out (<see cref="TrustAs"/>), handed to every directory opened below it.</summary>
    public VolumeTrust Trust { get; private set; }

    /// <summary>The guard's finding about the volume (it keeps no modes, it gives root's files to another uid), for everything opened below this directory from now on.</summary>
    public void TrustAs(VolumeTrust trust) => Trust = trust;

    /// <summary>
    /// Opens a directory by absolute path. Symlinks along the path are followed: it comes from the
    /// image or the operator (<c>/workspace</c> may itself be a link to the mount), not from the volume.
    /// </summary>
    public static DirectoryHandle Open(IPosix posix, string path)
    {
        int fd = posix.OpenAt(FileModes.AtCurrentDirectory, path, DirectoryFlags, 0);
        return new DirectoryHandle(posix, PosixException.Check(fd, "open directory", path), path, VolumeTrust.Of(posix));
    }

    /// <summary>An entry's path for messages; "." (a second descriptor of this directory) is this directory's own path.</summary>
    public string PathOf(string name) => name == "." ? Path : System.IO.Path.Join(Path, name);

    public int LStat(string name, out Stat stat) => _posix.LStatAt(Fd, name, out stat);

    public int ReadLink(string name, out string target) => _posix.ReadLinkAt(Fd, name, out target);

    public bool Exists(string name)
    {
        int result = LStat(name, out _);
        return result >= 0 || PosixException.ErrnoOf(result) != Errno.ENOENT;
    }

    /// <summary>Opens a subdirectory without following a symlink; null when it does not exist.</summary>
    public DirectoryHandle? TryOpenDirectory(string name)
    {
        int fd = _posix.OpenAt(Fd, name, DirectoryFlags | OpenFlags.O_NOFOLLOW, 0);
        if (fd >= 0)
        {
            return new DirectoryHandle(_posix, fd, PathOf(name), Trust);
        }

        var errno = PosixException.ErrnoOf(fd);
        if (errno == Errno.ENOENT)
        {
            return null;
        }

        throw Refusal(name, errno, "open directory");
    }

    public DirectoryHandle OpenDirectory(string name) =>
        TryOpenDirectory(name) ?? throw new PosixException("open directory", PathOf(name), Errno.ENOENT);

    /// <summary>Creates a subdirectory (mode and owner applied only when it is new) and opens it.</summary>
    public DirectoryHandle CreateDirectory(string name, FilePermissions mode, (uint Uid, uint Gid)? owner = null)
    {
        int made = _posix.MkdirAt(Fd, name, mode);
        if (made < 0 && PosixException.ErrnoOf(made) != Errno.EEXIST)
        {
            PosixException.Check(made, "create directory", PathOf(name));
        }

        var directory = OpenDirectory(name);
        if (made >= 0)
        {
            // mkdir's mode passed through the umask; the intended one is set explicitly.
            CheckMetadata(_posix.FChmod(directory.Fd, mode), "set the mode of", directory.Path);
            // A setgid parent (a pod's fsGroup) gives a new directory its own group: the owner is set to what was asked.
            if (owner is { } o && (_posix.FStat(directory.Fd, out var created) < 0 || created.st_uid != o.Uid || created.st_gid != o.Gid))
            {
                CheckMetadata(_posix.FChown(directory.Fd, o.Uid, o.Gid), "set the owner of", directory.Path);
            }
        }

        return directory;
    }

    /// <summary>
    /// Opens a regular file to read, not through a symlink and without waiting on a FIFO; -1 when it
    /// does not exist. Anything else at the name is refused (<see cref="UnsafeWorkspaceException"/>).
    /// The caller closes the descriptor.
    /// </summary>
    public int TryOpenFile(string name, out Stat stat)
    {
        int fd = _posix.OpenAt(Fd, name, OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK | OpenFlags.O_CLOEXEC, 0);
        if (fd < 0)
        {
            var errno = PosixException.ErrnoOf(fd);
            stat = default;
            return errno == Errno.ENOENT ? -1 : throw Refusal(name, errno, "open");
        }

        int looked = _posix.FStat(fd, out stat);
        if (looked >= 0 && (stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFREG)
        {
            return fd;
        }

        _posix.Close(fd);
        PosixException.Check(looked, "stat", PathOf(name));
        throw new UnsafeWorkspaceException(PathOf(name), "it is not a regular file");
    }

    /// <summary>Reads a regular file (not through a symlink); null when it does not exist.</summary>
    public byte[]? ReadFile(string name, int maxBytes, out Stat stat)
    {
        int fd = TryOpenFile(name, out stat);
        if (fd < 0)
        {
            return null;
        }

        try
        {
            if (stat.st_size > maxBytes)
            {
                throw new UnsafeWorkspaceException(PathOf(name), $"it is larger than {maxBytes} bytes");
            }

            var content = new byte[stat.st_size];
            int total = 0;
            while (total < content.Length)
            {
                long read = PosixException.Check(_posix.PRead(fd, content.AsSpan(total), total), "read", PathOf(name));
                if (read == 0)
                {
                    break;
                }

                total += (int)read;
            }

            return total == content.Length ? content : content[..total];
        }
        finally
        {
            _posix.Close(fd);
        }
    }

    /// <summary>
    /// Creates a file for writing, a new one in place of whatever had the name (never opened, so
    /// neither a FIFO nor a hard link planted there is written through); returns its descriptor.
    /// </summary>
    public int CreateFile(string name, FilePermissions mode)
    {
        int removed = _posix.UnlinkAt(Fd, name, isDirectory: false);
        if (removed < 0 && PosixException.ErrnoOf(removed) != Errno.ENOENT)
        {
            PosixException.Check(removed, "remove", PathOf(name));
        }

        return PosixException.Check(
            _posix.OpenAt(Fd, name, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, mode),
            "create",
            PathOf(name));
    }

    /// <summary>
    /// Replaces (or creates) a file atomically: a temporary file beside it, written, given its
    /// owner and mode, fsync'ed, renamed over the name, and the directory fsync'ed. A crash leaves
    /// the old content or the new, never a mix; a reader never sees a half-written file. Without
    /// <paramref name="durable"/> the fsyncs are left out: still atomic for readers, not power-cut safe.
    /// </summary>
    public void ReplaceFile(string name, ReadOnlySpan<byte> content, uint uid, uint gid, FilePermissions mode, bool durable = true)
    {
        string temporary = TemporaryPrefix(name) + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        const OpenFlags Create = OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;
        int fd = _posix.OpenAt(Fd, temporary, Create, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR);
        if (fd < 0 && PosixException.ErrnoOf(fd) == Errno.EEXIST)
        {
            // Left by a killed run with this same pid (PID 1 in a container, say).
            _posix.UnlinkAt(Fd, temporary, isDirectory: false);
            fd = _posix.OpenAt(Fd, temporary, Create, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR);
        }

        PosixException.Check(fd, "create", PathOf(temporary));
        bool renamed = false;
        try
        {
            int written = 0;
            while (written < content.Length)
            {
                written += (int)PosixException.Check(_posix.Write(fd, content[written..]), "write", PathOf(temporary));
            }

            if (uid != _posix.EffectiveUserId || gid != _posix.EffectiveGroupId)
            {
                CheckMetadata(_posix.FChown(fd, uid, gid), "set the owner of", PathOf(temporary));
            }

            CheckMetadata(_posix.FChmod(fd, mode), "set the mode of", PathOf(temporary));
            if (durable)
            {
                PosixException.Check(_posix.FSync(fd), "fsync", PathOf(temporary));
            }

            PosixException.Check(_posix.RenameAt(Fd, temporary, Fd, name, noReplace: false), "rename into place", PathOf(name));
            renamed = true;
            if (durable)
            {
                _posix.FSync(Fd);

                // Only here: the boot report (not durable) is rewritten on every boot, by the same pid
                // in a container, which clears its own leftover before it starts.
                RemoveStaleTemporaries(name);
            }
        }
        finally
        {
            _posix.Close(fd);
            if (!renamed)
            {
                _posix.UnlinkAt(Fd, temporary, isDirectory: false);
            }
        }
    }

    private static string TemporaryPrefix(string name) => $".{name}.packet-tmp-";

    /// <summary>
    /// Removes what a killed agent left while replacing <paramref name="name"/>: temporary files
    /// named after a process that no longer exists. A live one belongs to a concurrent agent.
    /// </summary>
    private void RemoveStaleTemporaries(string name)
    {
        string prefix = TemporaryPrefix(name);
        var stale = new List<string>();
        new DirectoryReader(_posix, 16 * 1024).ReadAll(Fd, entry =>
        {
            if (entry.Name.StartsWith(prefix, StringComparison.Ordinal)
                && int.TryParse(entry.Name.AsSpan(prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid)
                && pid != Environment.ProcessId && _posix.Kill(pid, 0) == -(int)Errno.ESRCH)
            {
                stale.Add(entry.Name);
            }
        });
        foreach (string leftover in stale)
        {
            _posix.UnlinkAt(Fd, leftover, isDirectory: false);
        }
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            _posix.Close(_fd);
            _fd = -1;
        }
    }

    /// <summary>
    /// The agent's own files and folders on a volume that holds no modes or owners (FAT-like, NFS with
    /// root_squash) are made without them, like everything else there: the seed counts and reports
    /// those losses for the home, and status shows them. Any other failure is an error.
    /// </summary>
    private static void CheckMetadata(int result, string operation, string path)
    {
        if (result < 0 && !ErrnoMeaning.VolumeRefuses(PosixException.ErrnoOf(result)))
        {
            throw new PosixException(operation, path, PosixException.ErrnoOf(result));
        }
    }

    /// <summary>Why an entry of this directory could not be opened, as an operator reads it: a link or the wrong kind of entry is refused by name, anything else is the call's error.</summary>
    public Exception Refusal(string name, Errno errno, string operation)
    {
        if (errno is Errno.ELOOP or Errno.ENOTDIR && LStat(name, out var stat) >= 0
            && (stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFLNK)
        {
            return new UnsafeWorkspaceException(PathOf(name), "it is a symlink, and the agent never follows a symlink inside the workspace");
        }

        return errno switch
        {
            Errno.ENOTDIR => new UnsafeWorkspaceException(PathOf(name), "it is not a directory"),
            Errno.EISDIR => new UnsafeWorkspaceException(PathOf(name), "it is not a regular file"),
            _ => new PosixException(operation, PathOf(name), errno),
        };
    }
}
