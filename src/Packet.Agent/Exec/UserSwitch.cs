using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Exec;

/// <summary>
/// <c>packet-agent run-as UID GID -- COMMAND</c>, how hooks start: leads a process group of its own
/// (so the agent can stop the hook with everything it started), becomes another user for good
/// when UID/GID are not the agent's own, then execs COMMAND. Supplementary groups first (the
/// user's own, from the group database, or none for an id without a passwd entry), then the gid,
/// then the uid, real, effective and saved alike, and a check that root cannot be regained. Any
/// failure stops before COMMAND runs.
/// </summary>
public static class UserSwitch
{
    public static int Run(uint uid, uint gid, IReadOnlyList<string> command, CommandResolver resolver)
    {
        if (Syscall.setpgid(0, 0) < 0)
        {
            return Fail($"cannot lead a process group: {PosixException.Describe(Stdlib.GetLastError())}", ExitCode.CommandNotExecutable);
        }

        var user = Syscall.getpwuid(uid);
        if (Syscall.geteuid() != uid || Syscall.getegid() != gid)
        {
            uint[] groups = user is null ? [gid] : [gid, .. Syscall.getgrouplist(user).Select(g => g.gr_gid).Where(g => g != gid)];
            if (Syscall.setgroups(groups) < 0 || Syscall.setresgid(gid, gid, gid) < 0 || Syscall.setresuid(uid, uid, uid) < 0)
            {
                return Fail($"cannot become uid {uid} gid {gid}: {PosixException.Describe(Stdlib.GetLastError())}", ExitCode.CommandNotExecutable);
            }

            if (Syscall.geteuid() != uid || Syscall.getegid() != gid || (uid != 0 && Syscall.setuid(0) == 0))
            {
                return Fail($"switching to uid {uid} gid {gid} did not hold", ExitCode.CommandNotExecutable);
            }
        }

        if (user is not null)
        {
            Environment.SetEnvironmentVariable("USER", user.pw_name);
            Environment.SetEnvironmentVariable("LOGNAME", user.pw_name);
        }

        var found = resolver.Resolve(command[0], Environment.GetEnvironmentVariable("PATH"));
        if (!found.Found)
        {
            return Fail(found.Failure!, found.ExitCode == 126 ? ExitCode.CommandNotExecutable : ExitCode.CommandNotFound);
        }

        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(v => $"{v.Key}={v.Value}").ToArray();
        var errno = ProcessReplacer.Exec(new ExecPlan(found.Path!, command, environment));
        return Fail($"execve {found.Path}: {PosixException.Describe(errno)}", errno == Errno.ENOENT ? ExitCode.CommandNotFound : ExitCode.CommandNotExecutable);
    }

    private static int Fail(string message, ExitCode code)
    {
        Console.Error.WriteLine($"packet-agent run-as: {message}");
        return (int)code;
    }
}
