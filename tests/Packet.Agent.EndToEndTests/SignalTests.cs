using System.Diagnostics;
using Mono.Unix.Native;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// SIGTERM before exec, as Kubernetes sends it to a pod's containers: to the agent as PID 1 of a
/// PID namespace (an init container's command, where a signal without a handler is dropped) and
/// as an ordinary process; during a seed, a wait for another agent's lock, and a hook.
/// </summary>
public sealed class SignalTests(LargeHome home) : IClassFixture<LargeHome>, IDisposable
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(2);
    private readonly TempDirectory _dir = new("signals");

    public void Dispose() => _dir.Dispose();

    [RootTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void SIGTERM_during_a_seed_stops_it_promptly_and_the_next_boot_completes_the_home(bool asPid1)
    {
        Require.Root();
        // bindfs (FUSE over ext4) makes the copy take seconds, so the signal lands while it runs.
        using var volume = new TestVolume(VolumeKind.Bindfs);
        string workspace = volume.Create("workspace");
        using var agent = RunningAgent.Start(["boot", "--workspace", workspace, "--home", home.Path, "--gpu", "off", "--link-home", "off", "--", "sh", "-c", "echo must not run"], asPid1);
        agent.WaitFor(() => Directory.Exists(Path.Join(workspace, ".packet", "staging", "home")), "the copy to begin");

        var (exitCode, took) = agent.Terminate();

        Assert.True(took < Prompt, $"it took {took} to stop\n{agent.Log}");
        Assert.Equal(143, exitCode);
        Assert.DoesNotContain("must not run", agent.Output, StringComparison.Ordinal);
        Assert.Contains("stopped by SIGTERM during seed; not run: marker, profile, gpu, hooks, ssh, exec", agent.Log, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Join(workspace, "home", ".packet-init")));
        Assert.True(Directory.Exists(Path.Join(workspace, ".packet", "staging", "home")), "the staged copy is kept for the next boot");
        Assert.Contains("\"outcome\":\"stopped\"", File.ReadAllText(Path.Join(workspace, ".packet", "last-boot.json")), StringComparison.Ordinal);

        var next = Agent.Run(["boot", "--workspace", workspace, "--home", home.Path, "--gpu", "off", "--link-home", "off"], timeout: TimeSpan.FromMinutes(2));

        Assert.True(next.ExitCode == 0, next.ToString());
        Assert.Contains("resuming a seed an earlier boot did not finish", next.StandardError, StringComparison.Ordinal);
        Assert.Empty(TreeSnapshot.Take(Path.Join(workspace, "home")).DifferencesFrom(home.Snapshot, Ignore.RootTimes, path => path is not (".bashrc" or ".packet-init" or "fixture/run/agent.sock")));
    }

    [RootTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void SIGTERM_while_waiting_for_another_agents_lock_ends_the_wait_at_once(bool asPid1)
    {
        Require.Root();
        string workspace = _dir.Create($"workspace-{asPid1}");
        string state = _dir.Create($"workspace-{asPid1}/.packet");
        using var holder = Process.Start("flock", ["--exclusive", Path.Join(state, "lock"), "sleep", "60"])!;
        using var agent = RunningAgent.Start(["boot", "--workspace", workspace, "--home", home.Path, "--gpu", "off"], asPid1);
        agent.WaitFor(() => agent.Log.Contains("waiting for the workspace lock", StringComparison.Ordinal), "the wait for the lock");

        var (exitCode, took) = agent.Terminate();

        holder.Kill();
        Assert.True(took < Prompt, $"it took {took} to stop\n{agent.Log}");
        Assert.Equal(143, exitCode);
        Assert.Contains("stopped by SIGTERM before the copy began; nothing was copied", agent.Log, StringComparison.Ordinal);
        Assert.Contains("stopped by SIGTERM during seed", agent.Log, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Join(workspace, "home")));
    }

    [RootFact]
    public void SIGTERM_during_a_hook_signals_its_process_group_and_stops_the_boot()
    {
        Require.Root();
        string workspace = _dir.Create("workspace-hook");
        string terms = Path.Join(workspace, "hook-got-term");
        HomeFixture.Write(workspace, ".packet/boot.d/50-server", ChildProcess.Lines(
            "#!/bin/sh",
            $"trap 'echo hook >> {terms}; exit 0' TERM",
            $"sh -c 'trap \"echo child >> {terms}; exit 0\" TERM; echo child ready; while :; do sleep 0.1; done' &",
            "echo started",
            "wait"), mode: "755");
        using var agent = RunningAgent.Start(["boot", "--workspace", workspace, "--home", home.Path, "--gpu", "off", "--", "sh", "-c", "echo must not run"], asPid1: true);
        agent.WaitFor(() => agent.Log.Contains("boot.d/50-server: started", StringComparison.Ordinal) && agent.Log.Contains("boot.d/50-server: child ready", StringComparison.Ordinal), "the hook and its child to start");

        var (exitCode, took) = agent.Terminate(timeout: TimeSpan.FromMinutes(3));

        Assert.True(took < Prompt, $"it took {took} to stop\n{agent.Log}");
        Assert.Equal(143, exitCode);
        Assert.Equal(["child", "hook"], File.ReadAllLines(terms).Order(StringComparer.Ordinal));
        Assert.Contains("boot.d/50-server was stopped with the boot", agent.Log, StringComparison.Ordinal);
        Assert.Contains("stopped by SIGTERM during hooks; not run: ssh, exec", agent.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("must not run", agent.Output, StringComparison.Ordinal);
    }

    /// <summary>The agent running in the background, as PID 1 of its own PID namespace or as an ordinary child.</summary>
    private sealed class RunningAgent : IDisposable
    {
        private readonly Process _process;
        private readonly System.Text.StringBuilder _log = new();
        private readonly System.Text.StringBuilder _output = new();
        private readonly bool _asPid1;

        private RunningAgent(Process process, bool asPid1)
        {
            _process = process;
            _asPid1 = asPid1;
        }

        public string Log
        {
            get
            {
                lock (_log)
                {
                    return _log.ToString();
                }
            }
        }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public static RunningAgent Start(string[] arguments, bool asPid1)
        {
            // unshare --fork: its child becomes PID 1 of the new namespace and execs the agent.
            var startInfo = asPid1
                ? new ProcessStartInfo("unshare", ["--pid", "--fork", "--mount-proc", RepositoryPaths.AgentBinary, .. arguments])
                : new ProcessStartInfo(RepositoryPaths.AgentBinary, arguments);
            startInfo.RedirectStandardError = true;
            startInfo.RedirectStandardOutput = true;
            foreach (var (name, value) in TestSandbox.Variables)
            {
                startInfo.Environment[name] = value;
            }

            var agent = new RunningAgent(Process.Start(startInfo)!, asPid1);
            agent._process.ErrorDataReceived += (_, line) => Append(agent._log, line.Data);
            agent._process.OutputDataReceived += (_, line) => Append(agent._output, line.Data);
            agent._process.BeginErrorReadLine();
            agent._process.BeginOutputReadLine();
            return agent;
        }

        public void WaitFor(Func<bool> condition, string what)
        {
            var waited = Stopwatch.StartNew();
            while (!condition())
            {
                Assert.False(_process.HasExited, $"the agent exited before {what}:\n{Log}");
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), $"no sign of {what} after a minute:\n{Log}");
                Thread.Sleep(5);
            }
        }

        /// <summary>SIGTERM to the agent itself (PID 1 inside its namespace); its exit code and how long it took to exit.</summary>
        public (int ExitCode, TimeSpan Took) Terminate(TimeSpan? timeout = null)
        {
            int pid = _asPid1 ? NamespaceInit() : _process.Id;
            var took = Stopwatch.StartNew();
            Assert.Equal(0, Syscall.kill(pid, Signum.SIGTERM));
            Assert.True(_process.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)), $"the agent did not exit:\n{Log}");
            var elapsed = took.Elapsed;
            _process.WaitForExit();
            return (_process.ExitCode, elapsed);
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.Dispose();
        }

        /// <summary>The host's pid of unshare's child: the agent, PID 1 in its namespace.</summary>
        private int NamespaceInit()
        {
            string children = File.ReadAllText($"/proc/{_process.Id}/task/{_process.Id}/children").Trim();
            return int.Parse(children.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        }

        private static void Append(System.Text.StringBuilder text, string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (text)
            {
                text.Append(line).Append('\n');
            }
        }
    }
}
