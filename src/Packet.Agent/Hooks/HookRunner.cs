using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using Packet.Agent.Posix;

namespace Packet.Agent.Hooks;

/// <summary>The user a hook runs as: the owner of the persisted home.</summary>
public sealed record HookIdentity(uint Uid, uint Gid);

/// <summary>One program to run as a hook, and where its output is kept.</summary>
public sealed record HookRun(string Name, string Program, IReadOnlyList<string> Arguments, int LogFd);

/// <summary>How a hook ended.</summary>
public sealed record HookOutcome(int ExitCode, bool TimedOut, TimeSpan Duration, string? StartError = null)
{
    public bool Succeeded => StartError is null && !TimedOut && ExitCode == 0;

    public string Describe(TimeSpan timeout) =>
        StartError is not null ? $"could not start: {StartError}"
        : TimedOut ? $"did not finish within {Units.Duration(timeout)} and was stopped (see --hook-timeout)"
        : $"exited with code {ExitCode}";
}

/// <summary>Runs hooks: the seam between the hooks step and real processes.</summary>
public interface IHookRunner
{
    HookOutcome Run(HookRun hook, HookIdentity identity, IReadOnlyDictionary<string, string> environment, string workingDirectory, TimeSpan timeout, Action<string> onLine);
}

/// <summary>
/// Runs a hook as a child process, each output line handed to the log and written to the hook's
/// own log file. When the agent is root and the hook's user is not, the child is the agent itself
/// in its <c>run-as</c> form, which drops groups, gid and uid and then execs the hook: a fresh
/// process, so nothing is done between fork and exec in a multi-threaded runtime.
/// </summary>
public sealed class HookRunner(IPosix posix, string agentPath) : IHookRunner
{
    private static readonly TimeSpan OutputGrace = TimeSpan.FromSeconds(2);

    public HookOutcome Run(HookRun hook, HookIdentity identity, IReadOnlyDictionary<string, string> environment, string workingDirectory, TimeSpan timeout, Action<string> onLine)
    {
        bool switchUser = posix.EffectiveUserId == 0 && identity.Uid != 0;
        var startInfo = new ProcessStartInfo(switchUser ? agentPath : hook.Program)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
        };
        if (switchUser)
        {
            foreach (string argument in new[] { "run-as", identity.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture), identity.Gid.ToString(System.Globalization.CultureInfo.InvariantCulture), "--", hook.Program })
            {
                startInfo.ArgumentList.Add(argument);
            }
        }

        foreach (string argument in hook.Arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        startInfo.Environment.Clear();
        foreach (var (name, value) in environment)
        {
            startInfo.Environment[name] = value;
        }

        var gate = new Lock();
        bool finished = false;
        using var outputEnded = new CountdownEvent(2);
        void Line(string? line)
        {
            lock (gate)
            {
                if (finished)
                {
                    return; // the log descriptor is closed (and its number maybe reused) once Run returns
                }

                if (line is null)
                {
                    outputEnded.Signal();
                    return;
                }

                posix.Write(hook.LogFd, Encoding.UTF8.GetBytes(line + "\n"));
                onLine(line);
            }
        }

        var started = Stopwatch.StartNew();
        using var process = new Process { StartInfo = startInfo };
        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            return new HookOutcome(-1, false, started.Elapsed, e.Message);
        }

        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        // WaitForExit with a limit returns when the hook exits, without waiting for the end of its
        // output: a server it started in the background may hold the pipe open for ever.
        bool exited = process.WaitForExit(timeout);
        if (!exited)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It finished between the limit and the kill.
            }

            process.WaitForExit(TimeSpan.FromSeconds(5));
        }

        // The last lines arrive after the exit; a background child that kept the pipe open (it
        // should redirect its output) is not waited for beyond a moment.
        outputEnded.Wait(OutputGrace);
        lock (gate)
        {
            finished = true;
        }

        return new HookOutcome(exited ? process.ExitCode : -1, !exited, started.Elapsed);
    }
}
