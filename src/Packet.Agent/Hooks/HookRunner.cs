using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using Packet.Agent.Posix;

namespace Packet.Agent.Hooks;

/// <summary>The user a hook runs as: the owner of the persisted home.</summary>
public sealed record HookIdentity(uint Uid, uint Gid);

/// <summary>One program to run as a hook, and where its output is kept.</summary>
public sealed record HookRun(string Name, string Program, IReadOnlyList<string> Arguments, int LogFd);

/// <summary>How a hook ended: its exit code, or stopped at its time limit, or stopped because the agent was asked to stop.</summary>
public sealed record HookOutcome(int ExitCode, bool TimedOut, TimeSpan Duration, string? StartError = null, bool Stopped = false)
{
    public bool Succeeded => StartError is null && !TimedOut && !Stopped && ExitCode == 0;

    public string Describe(TimeSpan timeout) =>
        StartError is not null ? $"could not start: {StartError}"
        : Stopped ? "was stopped with the boot"
        : TimedOut ? $"did not finish within {Units.Duration(timeout)} and was stopped (see --hook-timeout)"
        : $"exited with code {ExitCode}";
}

/// <summary>Runs hooks: the seam between the hooks step and real processes.</summary>
public interface IHookRunner
{
    /// <summary>Runs one hook to its end, its time limit, or <paramref name="stop"/>; then it is stopped with everything it started.</summary>
    HookOutcome Run(HookRun hook, HookIdentity identity, IReadOnlyDictionary<string, string> environment, string workingDirectory, TimeSpan timeout, Action<string> onLine, CancellationToken stop);
}

/// <summary>
/// Runs a hook as a child process, each output line handed to the log and written to the hook's
/// own log file. The child is the agent itself in its <c>run-as</c> form, which makes it the leader
/// of a process group of its own, drops to the hook's user when that is another (groups, gid,
/// uid), and then execs the hook: a fresh process, so nothing is done between fork and exec in a
/// multi-threaded runtime. Stopping a hook (its time limit, or a stop signal to the agent) sends
/// SIGTERM to its whole group, and SIGKILL to the group and its process tree after a grace.
/// </summary>
public sealed class HookRunner(IPosix posix, string agentPath, TimeProvider clock) : IHookRunner
{
    private const int SigTerm = 15;
    private const int SigKill = 9;
    private static readonly TimeSpan OutputGrace = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(1);

    public HookOutcome Run(HookRun hook, HookIdentity identity, IReadOnlyDictionary<string, string> environment, string workingDirectory, TimeSpan timeout, Action<string> onLine, CancellationToken stop)
    {
        var startInfo = StartInfo(hook, identity, environment, workingDirectory);
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

        long started = clock.GetTimestamp();
        using var process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        var exit = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.Exited += (_, _) => exit.TrySetResult();
        if (Start(process) is { } notStarted)
        {
            return new HookOutcome(-1, false, clock.GetElapsedTime(started), notStarted);
        }

        _ = ReadLines(process.StandardOutput.BaseStream, Line);
        _ = ReadLines(process.StandardError.BaseStream, Line);

        // The hook's exit, not the end of its output: a server it started in the background may hold
        // the pipe open for ever (Process.WaitForExitAsync would wait for that too, once lines are read).
        bool exited = WaitForExit(exit.Task, timeout, stop);
        if (!exited)
        {
            StopGroup(process);
        }

        // The last lines arrive after the exit; a background child that kept the pipe open (it
        // should redirect its output) is not waited for beyond a moment, nor at all when stopping.
        outputEnded.Wait(stop.IsCancellationRequested ? TimeSpan.Zero : OutputGrace, CancellationToken.None);
        lock (gate)
        {
            finished = true;
        }

        bool stopped = !exited && stop.IsCancellationRequested;
        return new HookOutcome(exited ? process.ExitCode : -1, !exited && !stopped, clock.GetElapsedTime(started), Stopped: stopped);
    }

    /// <summary>The agent's run-as, which drops to the hook's user and execs the hook, with exactly the given environment.</summary>
    private ProcessStartInfo StartInfo(HookRun hook, HookIdentity identity, IReadOnlyDictionary<string, string> environment, string workingDirectory)
    {
        var startInfo = new ProcessStartInfo(agentPath)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
        };
        foreach (string argument in new[] { "run-as", identity.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture), identity.Gid.ToString(System.Globalization.CultureInfo.InvariantCulture), "--", hook.Program })
        {
            startInfo.ArgumentList.Add(argument);
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

        return startInfo;
    }

    /// <summary>Starts the hook with nothing on its standard input; why it could not start, or null.</summary>
    private static string? Start(Process process)
    {
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            return e.Message;
        }

        process.StandardInput.Close();
        return null;
    }

    /// <summary>
    /// A hook's output, line by line (<see cref="BoundedLines"/>: a line longer than
    /// <see cref="BoundedLines.MaxLineBytes"/> is cut, so a hook that prints without a newline cannot
    /// fill the agent's memory), then null when it ends or can no longer be read.
    /// </summary>
    private static async Task ReadLines(Stream output, Action<string?> onLine)
    {
        var lines = new BoundedLines(onLine);
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await output.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                lines.Add(buffer.AsSpan(0, read));
            }

            lines.End();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The process was disposed as Run returned: nothing waits for more.
        }
        finally
        {
            onLine(null);
        }
    }

    private bool WaitForExit(Task exit, TimeSpan timeout, CancellationToken stop)
    {
        // The time limit, or the stop, ends the delay; the delay's own ending (cancelled) is not an error here.
        Task.WhenAny(exit, Task.Delay(timeout, clock, stop)).GetAwaiter().GetResult();
        return exit.IsCompleted;
    }

    /// <summary>
    /// SIGTERM to the hook's group (run-as made it the leader), a grace for the whole group to end,
    /// then SIGKILL to what is left of the group and of the hook's tree.
    /// </summary>
    private void StopGroup(Process process)
    {
        int group = -process.Id;
        posix.Kill(group, SigTerm);
        long asked = clock.GetTimestamp();
        while (posix.Kill(group, 0) >= 0 && clock.GetElapsedTime(asked) < StopGrace)
        {
            Task.Delay(TimeSpan.FromMilliseconds(20), clock).Wait();
        }

        posix.Kill(group, SigKill);
        try
        {
            process.Kill(entireProcessTree: true); // children that left the group
        }
        catch (InvalidOperationException)
        {
            // It exited meanwhile.
        }

        process.WaitForExit(TimeSpan.FromSeconds(5));
    }
}

/// <summary>Bytes split into lines (a trailing CR dropped), each of at most <see cref="MaxLineBytes"/>; what a longer line holds beyond that is counted, not kept.</summary>
public sealed class BoundedLines(Action<string> onLine)
{
    public const int MaxLineBytes = 16 * 1024;

    private readonly byte[] _line = new byte[MaxLineBytes];
    private int _length;
    private long _dropped;

    public void Add(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            int end = bytes.IndexOf((byte)'\n');
            var part = end < 0 ? bytes : bytes[..end];
            int kept = Math.Min(part.Length, MaxLineBytes - _length);
            part[..kept].CopyTo(_line.AsSpan(_length));
            _length += kept;
            _dropped += part.Length - kept;
            if (end < 0)
            {
                return;
            }

            Emit();
            bytes = bytes[(end + 1)..];
        }
    }

    /// <summary>The last line, when the output did not end with a newline.</summary>
    public void End()
    {
        if (_length > 0 || _dropped > 0)
        {
            Emit();
        }
    }

    private void Emit()
    {
        int length = _dropped == 0 && _length > 0 && _line[_length - 1] == (byte)'\r' ? _length - 1 : _length;
        string line = Encoding.UTF8.GetString(_line, 0, length);
        if (_dropped > 0)
        {
            line += $" [line cut: {_dropped.ToString(System.Globalization.CultureInfo.InvariantCulture)} more bytes]";
        }

        _length = 0;
        _dropped = 0;
        onLine(line);
    }
}
