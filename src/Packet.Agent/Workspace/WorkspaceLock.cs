using System.Text;
using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Workspace;

/// <summary>
/// An exclusive flock on <c>/workspace/.packet/lock</c>, so two agents on one volume (two pods, or
/// an init container and a manual run) never seed at once. The holder writes who it is into the
/// file, so a waiter can say what it is waiting for. The kernel drops the lock if the holder dies.
/// </summary>
public sealed class WorkspaceLock : IDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    private readonly IPosix _posix;
    private int _fd;

    private WorkspaceLock(IPosix posix, int fd)
    {
        _posix = posix;
        _fd = fd;
    }

    /// <summary>
    /// Takes the lock, waiting up to <paramref name="timeout"/>; null when another agent still holds
    /// it then. <paramref name="onWaiting"/> hears who holds it, at the start and then every
    /// <paramref name="reportEvery"/>, by <paramref name="clock"/>. A stop request ends the wait at once (OperationCanceledException).
    /// </summary>
    public static WorkspaceLock? Acquire(IPosix posix, DirectoryHandle state, TimeProvider clock, TimeSpan timeout, TimeSpan reportEvery, Action<string, TimeSpan> onWaiting, CancellationToken stop)
    {
        int fd = posix.OpenAt(state.Fd, WorkspaceLayout.Lock, OpenFlags.O_RDWR | OpenFlags.O_CREAT | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK | OpenFlags.O_CLOEXEC, FileModes.Readable);
        if (fd < 0 && PosixException.ErrnoOf(fd) == Errno.EACCES)
        {
            // Root's lock file, taken by an agent that is not root: flock needs only a read descriptor.
            fd = posix.OpenAt(state.Fd, WorkspaceLayout.Lock, OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK | OpenFlags.O_CLOEXEC, 0);
        }

        if (fd < 0)
        {
            throw state.Refusal(WorkspaceLayout.Lock, PosixException.ErrnoOf(fd), "open the lock");
        }

        bool canRecordHolder = CanRecordHolder(posix, fd, state.PathOf(WorkspaceLayout.Lock));
        long started = clock.GetTimestamp();
        var nextReport = TimeSpan.Zero;
        while (true)
        {
            int locked = posix.Flock(fd, LibC.LOCK_EX | LibC.LOCK_NB);
            if (locked >= 0)
            {
                if (canRecordHolder)
                {
                    RecordHolder(posix, fd, clock.GetUtcNow());
                }

                return new WorkspaceLock(posix, fd);
            }

            var errno = PosixException.ErrnoOf(locked);
            if (errno != Errno.EWOULDBLOCK && errno != Errno.EINTR)
            {
                posix.Close(fd);
                throw new PosixException("lock", state.PathOf(WorkspaceLayout.Lock), errno);
            }

            var waited = clock.GetElapsedTime(started);
            if (waited >= nextReport)
            {
                onWaiting(ReadHolder(posix, fd), waited);
                nextReport += reportEvery;
            }

            if (waited >= timeout)
            {
                posix.Close(fd);
                return null;
            }

            try
            {
                Task.Delay(PollInterval, clock, stop).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                posix.Close(fd);
                throw new OperationCanceledException(stop);
            }
        }
    }

    /// <summary>
    /// Whether the holder may be written into the lock: only into the agent's own file with one
    /// name (never through a hard link into another file). Anything but a regular file is refused.
    /// </summary>
    private static bool CanRecordHolder(IPosix posix, int fd, string path)
    {
        int looked = posix.FStat(fd, out var stat);
        if (looked >= 0 && (stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFREG)
        {
            return stat.st_uid == posix.EffectiveUserId && stat.st_nlink == 1 && (stat.st_mode & FilePermissions.S_IWUSR) != 0;
        }

        posix.Close(fd);
        PosixException.Check(looked, "stat", path);
        throw new UnsafeWorkspaceException(path, "it is not a regular file");
    }

    /// <summary>Describes the current holder from what it wrote into the lock file.</summary>
    public static string ReadHolder(IPosix posix, int fd)
    {
        var buffer = new byte[256];
        long read = posix.PRead(fd, buffer, 0);
        // Another agent wrote it: shown in the log, so nothing in it may steer the terminal.
        string text = read > 0 ? new string(Encoding.UTF8.GetString(buffer, 0, (int)read).Trim().Select(c => char.IsControl(c) ? '?' : c).ToArray()) : string.Empty;
        return text.Length > 0 ? text : "another agent";
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            _posix.Flock(_fd, LibC.LOCK_UN);
            _posix.Close(_fd);
            _fd = -1;
        }
    }

    private static void RecordHolder(IPosix posix, int fd, DateTimeOffset now)
    {
        string holder = $"pid {Environment.ProcessId} on {Environment.MachineName} since {now.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}\n";
        posix.FTruncate(fd, 0);
        posix.PWrite(fd, Encoding.UTF8.GetBytes(holder), 0);
    }
}
