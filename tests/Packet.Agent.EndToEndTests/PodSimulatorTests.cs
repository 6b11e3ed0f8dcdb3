using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// The image in a simulated pod (scripts/pod-sim.sh): overlayfs ephemeral layer per start, the
/// volume bind-mounted at /workspace, mount and PID namespaces with the ENTRYPOINT as PID 1.
/// </summary>
public sealed class PodSimulatorTests : IDisposable
{
    private readonly TempDirectory _dir = new("pod");
    private readonly string _name = $"t{Environment.ProcessId}-{Guid.NewGuid():N}"[..20];
    private readonly List<string> _started = [];

    public PodSimulatorTests()
    {
        Volume = _dir.Create("volume");
    }

    private string Volume { get; }

    private static string State => Path.Join(RepositoryPaths.Root, "artifacts/pod-sim");

    public void Dispose()
    {
        foreach (string name in _started)
        {
            PodSim("stop", name);
        }

        _dir.Dispose();
    }

    private static ChildResult PodSim(params string[] arguments) => ChildProcess.Run(
        Path.Join(RepositoryPaths.Root, "scripts/pod-sim.sh"),
        arguments,
        new Dictionary<string, string?> { ["PACKET_AGENT_DIR"] = Path.GetDirectoryName(RepositoryPaths.AgentBinary) },
        TimeSpan.FromMinutes(5));

    private string Start(string name, params string[] options)
    {
        var result = PodSim(["run", name, "--detach", .. options]);
        Assert.True(result.ExitCode == 0, result.ToString());
        _started.Add(name);
        WaitForLog(name, "boot[0] boot finished");
        return name;
    }

    private static string Log(string name) => File.Exists(Path.Join(State, $"{name}.log")) ? File.ReadAllText(Path.Join(State, $"{name}.log")) : string.Empty;

    private static void WaitForLog(string name, string text)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!Log(name).Contains(text, StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no '{text}' in the log of {name}:\n{Log(name)}");
            Thread.Sleep(50);
        }
    }

    private ChildResult Exec(string name, string script) => PodSim("exec", name, "--", "bash", "-ic", script);

    private void Stop(string name)
    {
        Assert.Equal(0, PodSim("stop", name).ExitCode);
        _started.Remove(name);
    }

    [RootFact]
    public void An_entrypoint_pod_seeds_once_and_its_home_and_tools_survive_restarts()
    {
        Require.Root();
        // The command prints COMMAND-42, a text that its own command line (logged by the agent) does not hold.
        string pod = Start(_name, "--volume", Volume, "--", "sh", "-c", "echo COMMAND-$((40 + 2)); exec sleep infinity");
        WaitForLog(pod, "COMMAND-42");
        string log = Log(pod);
        Assert.Contains("info: seed[2] copied", log);
        Assert.True(log.IndexOf("boot[0] boot finished", StringComparison.Ordinal) < log.IndexOf("COMMAND-42", StringComparison.Ordinal), log);
        Assert.Contains("linked /root to /workspace/home", log);
        Directory.CreateDirectory(Path.Join(Volume, "bin"));
        File.WriteAllText(Path.Join(Volume, "bin/mytool"), "#!/bin/sh\necho mytool from the volume\n");
        File.SetUnixFileMode(Path.Join(Volume, "bin/mytool"), (UnixFileMode)0b111_101_101);

        var first = Exec(pod, "echo $HOME; cat ~/.image-marker; mytool; echo 'written in the pod' > ~/notes.txt; echo 1 > /tmp/ephemeral");

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Equal("/root\nfrom the image\nmytool from the volume\n", first.StandardOutput);
        for (int restart = 1; restart <= 3; restart++)
        {
            Stop(pod);
            Start(pod, "--volume", Volume);
            Assert.Contains("skipped: already seeded", Log(pod));

            var again = Exec(pod, "cat ~/notes.txt ~/.image-marker; ls /tmp/ephemeral 2>&1 || true; grep -c '# >>> packet-persist >>>' ~/.bashrc");

            Assert.Equal("written in the pod\nfrom the image\nls: cannot access '/tmp/ephemeral': No such file or directory\n1\n", again.StandardOutput);
        }
    }

    [RootFact]
    public void An_init_container_seeds_the_volume_and_the_main_container_mounts_the_home()
    {
        Require.Root();

        var init = PodSim("run", _name + "-init", "--volume", Volume, "--command", "packet-agent", "boot", "--strict", "--gpu", "off", "--");

        Assert.True(init.ExitCode == 0, init.ToString());
        Assert.Contains("info: seed[2] copied", init.StandardError);
        string main = Start(_name, "--volume", Volume, "--home-subpath");
        Assert.Contains("/root already is the persisted home", Log(main));

        var shell = Exec(main, "cat ~/.image-marker; head -c 23 ~/.packet-init; echo; command -v packet-agent");

        Assert.True(shell.ExitCode == 0, shell.ToString());
        Assert.Equal("from the image\n{\"agent\":\"packet-agent\"\n/usr/local/bin/packet-agent\n", shell.StandardOutput);
    }

    [RootFact]
    public void A_pod_without_a_volume_still_starts_and_says_why_nothing_persists()
    {
        Require.Root();

        string pod = Start(_name, "--", "sh", "-c", "echo COMMAND-$((40 + 2)); exec sleep infinity");

        WaitForLog(pod, "COMMAND-42");
        Assert.Contains("warn: guard[1] /workspace does not exist", Log(pod));
    }

    [RootFact]
    public void A_failed_strict_init_container_exits_1_with_its_reason_in_the_termination_message()
    {
        Require.Root();

        var init = PodSim("run", _name, "--command", "packet-agent", "boot", "--strict", "--gpu", "off", "--");

        Assert.Equal(1, init.ExitCode);
        string message = File.ReadAllText(Path.Join(State, $"{_name}.termination-log"));
        Assert.StartsWith("guard: /workspace does not exist", message);
        Assert.True(message.Length <= 4096);
    }
}
