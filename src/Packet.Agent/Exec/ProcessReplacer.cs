using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Exec;

/// <summary>
/// Replaces the agent with COMMAND through execve, so COMMAND keeps the agent's PID (PID 1 in a
/// container) and receives the pod's signals itself. Before that it undoes what the .NET runtime
/// changed in the process and what execve would otherwise pass on:
/// <list type="bullet">
/// <item>descriptors the agent opened get FD_CLOEXEC (those inherited from the parent still pass through, as with tini);</item>
/// <item>SIGPIPE and SIGXFSZ, ignored by the runtime, go back to their defaults (ignored signals survive execve);</item>
/// <item>the signal mask is emptied (a blocked mask survives execve too).</item>
/// </list>
/// </summary>
public static unsafe class ProcessReplacer
{
    private static HashSet<int>? s_inherited;

    /// <summary>Notes the descriptors the agent was started with (open and not close-on-exec): those are the parent's to pass on.</summary>
    public static void CaptureInheritedDescriptors()
    {
        s_inherited = [];
        foreach (int fd in OpenDescriptors())
        {
            int flags = LibC.fcntl(fd, LibC.F_GETFD, 0);
            if (flags >= 0 && (flags & LibC.FD_CLOEXEC) == 0)
            {
                s_inherited.Add(fd);
            }
        }
    }

    /// <summary>Never returns on success; on failure returns the errno (the process is unchanged but for close-on-exec flags).</summary>
    public static Errno Exec(ExecPlan plan)
    {
        foreach (int fd in OpenDescriptors())
        {
            if (fd > 2 && s_inherited?.Contains(fd) != true)
            {
                int flags = LibC.fcntl(fd, LibC.F_GETFD, 0);
                if (flags >= 0)
                {
                    LibC.fcntl(fd, LibC.F_SETFD, flags | LibC.FD_CLOEXEC);
                }
            }
        }

        LibC.signal(LibC.SIGPIPE, 0);
        LibC.signal(LibC.SIGXFSZ, 0);
        byte* emptySet = stackalloc byte[128];
        new Span<byte>(emptySet, 128).Clear();
        LibC.sigprocmask(LibC.SIG_SETMASK, emptySet, null);

        // Mono.Posix passes the arrays as they are: execve needs each to end with NULL.
        int result = Syscall.execve(plan.Path, [.. plan.Arguments, null!], [.. plan.Environment, null!]);
        return result < 0 ? Stdlib.GetLastError() : Errno.EINVAL;
    }

    private static List<int> OpenDescriptors()
    {
        var descriptors = new List<int>();
        try
        {
            foreach (string entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
            {
                if (int.TryParse(Path.GetFileName(entry), out int fd))
                {
                    descriptors.Add(fd);
                }
            }

            return descriptors;
        }
        catch (IOException)
        {
            // No /proc (a bare chroot): ask each descriptor number up to the limit instead.
            return ProbeDescriptors();
        }
    }

    private static unsafe List<int> ProbeDescriptors()
    {
        LibC.RLimit limit;
        ulong highest = LibC.getrlimit(LibC.RLIMIT_NOFILE, &limit) == 0 ? Math.Min(limit.Current, 65536UL) : 1024UL;
        var descriptors = new List<int>();
        for (int fd = 0; fd < (int)highest; fd++)
        {
            if (LibC.fcntl(fd, LibC.F_GETFD, 0) >= 0)
            {
                descriptors.Add(fd);
            }
        }

        return descriptors;
    }
}
