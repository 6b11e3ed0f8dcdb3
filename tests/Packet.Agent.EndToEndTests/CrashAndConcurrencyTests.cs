using System.Diagnostics;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>A home big enough that a seed takes a while: 3,000 small files, 64 MiB of models, every odd case.</summary>
public sealed class LargeHome : IDisposable
{
    private readonly TempDirectory _dir = new("large-home");

    public LargeHome()
    {
        Path = _dir.Create("home");
        for (int d = 0; d < 60; d++)
        {
            for (int f = 0; f < 50; f++)
            {
                HomeFixture.Write(Path, $"lib/pkg{d:D2}/module{f:D2}.py", $"# module {d}.{f}\n" + new string('x', 200 * (f + 1)));
            }
        }

        for (int i = 0; i < 4; i++)
        {
            HomeFixture.WriteBytes(Path, $".cache/model-{i}.bin", HomeFixture.RandomBytes(16 << 20, i));
        }

        HomeFixture.Build(System.IO.Path.Join(Path, "fixture"), rootOnlyEntries: false);
        HomeFixture.FixTimes(Path);
        Snapshot = TreeSnapshot.Take(Path);
    }

    public string Path { get; }

    public TreeSnapshot Snapshot { get; }

    public void Dispose() => _dir.Dispose();
}

/// <summary>kill -9 mid-seed, and several agents on one volume: every outcome converges to one correct home.</summary>
public sealed class CrashAndConcurrencyTests(LargeHome home) : IClassFixture<LargeHome>, IDisposable
{
    private readonly TempDirectory _dir = new("crash");

    private string Home => home.Path;

    private TreeSnapshot Source => home.Snapshot;

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_boot_killed_at_any_moment_leaves_no_marked_half_home_and_the_next_boot_completes_it()
    {
        int killedMidCopy = 0;
        foreach (int killAfterMilliseconds in new[] { 5, 25, 60, 120, 200, 300, 450, 700, 1000 })
        {
            string workspace = _dir.Create($"ws-{killAfterMilliseconds}");
            using (var agent = Start(workspace))
            {
                Thread.Sleep(killAfterMilliseconds);
                agent.Kill();
                agent.WaitForExit();
            }

            string persisted = System.IO.Path.Join(workspace, "home");
            if (File.Exists(System.IO.Path.Join(persisted, ".packet-init")))
            {
                AssertSeededCorrectly(workspace); // the kill came after the marker: the home must be whole
            }
            else if (Directory.Exists(System.IO.Path.Join(workspace, ".packet", "staging", "home")))
            {
                killedMidCopy++;
            }

            var next = Boot(workspace);

            Assert.True(next.ExitCode == 0, next.ToString());
            AssertSeededCorrectly(workspace);
        }

        Assert.True(killedMidCopy >= 2, $"only {killedMidCopy} kills landed during a copy: the home is too small to test this");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(5)]
    public void Agents_started_at_once_on_one_volume_copy_once_and_all_succeed(int agents)
    {
        string workspace = _dir.Create($"ws-{agents}-agents");

        var results = Enumerable.Range(0, agents).AsParallel().WithDegreeOfParallelism(agents).Select(_ => Boot(workspace)).ToArray();

        Assert.All(results, result => Assert.True(result.ExitCode == 0, result.ToString()));
        Assert.Single(results, result => result.StandardError.Contains("info: seed[2] copied", StringComparison.Ordinal));
        AssertSeededCorrectly(workspace);
    }

    private void AssertSeededCorrectly(string workspace)
    {
        string persisted = System.IO.Path.Join(workspace, "home");
        var seeded = TreeSnapshot.Take(persisted);
        Assert.Empty(seeded.DifferencesFrom(Source, Ignore.RootTimes, path => path is not (".bashrc" or ".packet-init" or "fixture/run/agent.sock")));
        Assert.True(seeded.Entries.ContainsKey(".packet-init"));
        if (File.Exists(System.IO.Path.Join(persisted, ".bashrc")))
        {
            Assert.Single(File.ReadAllLines(System.IO.Path.Join(persisted, ".bashrc")), line => line == "# >>> packet-persist >>>");
        }

        Assert.False(Directory.Exists(System.IO.Path.Join(workspace, ".packet", "staging")), "staging/ exists only while a seed is unfinished");
    }

    private Process Start(string workspace)
    {
        var startInfo = new ProcessStartInfo(RepositoryPaths.AgentBinary)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (string argument in new[] { "boot", "--workspace", workspace, "--home", Home, "--gpu", "off" })
        {
            startInfo.ArgumentList.Add(argument);
        }

        var process = Process.Start(startInfo)!;
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return process;
    }

    private ChildResult Boot(string workspace) =>
        Agent.Run(["boot", "--workspace", workspace, "--home", Home, "--gpu", "off"], timeout: TimeSpan.FromMinutes(2));
}
