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
        int fd = posix.OpenAt(state.Fd, WorkspaceLayout.Lock, OpenFlags.O_RDWR | OpenFlags.O_CREAT | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, FileModes.Readable);
        bool canRecordHolder = fd >= 0;
        if (fd < 0 && PosixException.ErrnoOf(fd) == Errno.EACCES)
        {
            // A root agent's lock file in a state folder that now belongs to the user: flock needs only
            // a read descriptor; the holder is then not recorded.
            fd = posix.OpenAt(state.Fd, WorkspaceLayout.Lock, OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, 0);
        }

        PosixException.Check(fd, "open the lock", state.PathOf(WorkspaceLayout.Lock));
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

    /// <summary>Describes the current holder from what it wrote into the lock file.</summary>
    public static string ReadHolder(IPosix posix, int fd)
    {
        var buffer = new byte[256];
        long read = posix.PRead(fd, buffer, 0);
        string text = read > 0 ? Encoding.UTF8.GetString(buffer, 0, (int)read).Trim() : string.Empty;
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
