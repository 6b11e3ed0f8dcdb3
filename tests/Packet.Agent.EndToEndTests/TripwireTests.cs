using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// scripts/tripwire.sh, the test run's last line of defence, fired on a scratch copy of a machine's
/// top level (TRIPWIRE_ROOT), never on the machine itself.
/// </summary>
public sealed class TripwireTests : IDisposable
{
    private readonly TempDirectory _dir = new("tripwire");
    private readonly string _machine;
    private readonly string _fingerprint;

    public TripwireTests()
    {
        _machine = _dir.Create("machine");
        foreach (string directory in new[] { "root", "usr", "tmp", "workspace/home", "workspace/bin" })
        {
            _dir.Create($"machine/{directory}");
        }

        File.WriteAllText(Path.Join(_machine, "workspace/home/.bashrc"), "export A=1\n");
        File.CreateSymbolicLink(Path.Join(_machine, "bin"), "usr/bin");
        _fingerprint = _dir["fingerprint"];
    }

    public void Dispose() => _dir.Dispose();

    private ChildResult Tripwire(string verb, string? home = null) =>
        ChildProcess.Run(
            Path.Join(RepositoryPaths.Root, "scripts/tripwire.sh"),
            [verb, _fingerprint],
            new Dictionary<string, string?> { ["TRIPWIRE_ROOT"] = _machine, ["HOME"] = home ?? Path.Join(_machine, "root") });

    private string Machine(string relative) => Path.Join(_machine, relative);

    [Fact]
    public void A_run_that_changed_nothing_passes()
    {
        Assert.Equal(0, Tripwire("record").ExitCode);
        Directory.CreateDirectory(Machine("tmp/scratch-of-a-test"));
        File.WriteAllText(Machine("root/.bash_history"), "ls\n");

        var result = Tripwire("verify");

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public void The_home_moved_aside_and_replaced_by_a_link_fails_the_run_and_is_named()
    {
        Assert.Equal(0, Tripwire("record").ExitCode);
        Directory.Move(Machine("root"), Machine("root.packet-image"));
        File.CreateSymbolicLink(Machine("root"), "/workspace/home");

        var result = Tripwire("verify");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("changed what no test may touch", result.StandardError);
        Assert.Contains(result.ErrorLines, line => line.StartsWith("> /root: symbolic link", StringComparison.Ordinal) && line.EndsWith("-> /workspace/home", StringComparison.Ordinal));
        Assert.Contains(result.ErrorLines, line => line.StartsWith("> /root.packet-image: d", StringComparison.Ordinal));
    }

    [Fact]
    public void A_home_emptied_in_place_fails_the_run_and_names_each_entry_gone()
    {
        // What a mutant of the live home's removal once did to /root: the directory stays, its entries go.
        File.WriteAllText(Machine("root/.gitconfig"), "[user]\n");
        Directory.CreateDirectory(Machine("root/.cargo/bin"));
        File.WriteAllText(Machine("root/.profile"), "kept\n");
        Assert.Equal(0, Tripwire("record").ExitCode);
        File.Delete(Machine("root/.gitconfig"));
        Directory.Delete(Machine("root/.cargo"), recursive: true);

        var result = Tripwire("verify");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("removed or replaced entries of a real home", result.StandardError, StringComparison.Ordinal);
        Assert.Contains(result.ErrorLines, line => line.StartsWith($"< {Machine("root/.gitconfig")}: f, inode ", StringComparison.Ordinal));
        Assert.Contains(result.ErrorLines, line => line.StartsWith($"< {Machine("root/.cargo")}: d, inode ", StringComparison.Ordinal));
        Assert.DoesNotContain(result.ErrorLines, line => line.Contains(".profile", StringComparison.Ordinal));
    }

    [Fact]
    public void A_file_rewritten_in_a_real_workspace_fails_the_run()
    {
        Assert.Equal(0, Tripwire("record").ExitCode);
        File.WriteAllText(Machine("workspace/home/.bashrc.new"), "export A=1\nexport PATH=/workspace/bin:$PATH\n");
        File.Move(Machine("workspace/home/.bashrc.new"), Machine("workspace/home/.bashrc"), overwrite: true);

        var result = Tripwire("verify");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(result.ErrorLines, line => line.StartsWith("> /workspace/home/.bashrc: f", StringComparison.Ordinal));
    }

    [Fact]
    public void A_home_outside_root_is_watched_too()
    {
        string home = _dir.Create("machine/home/dev");
        Assert.Equal(0, Tripwire("record", home).ExitCode);
        Directory.Delete(home);
        File.CreateSymbolicLink(home, "/workspace/home");

        var result = Tripwire("verify", home);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(result.ErrorLines, line => line.StartsWith($"> $HOME ({home}): symbolic link", StringComparison.Ordinal));
    }

    [Fact]
    public void The_test_command_records_before_the_tests_and_verifies_after()
    {
        string[] script = File.ReadAllLines(Path.Join(RepositoryPaths.Root, "scripts/test.sh"));
        int record = Array.FindIndex(script, line => line.Contains("tripwire.sh\" record", StringComparison.Ordinal));
        int tests = Array.FindIndex(script, line => line.Contains("dotnet test", StringComparison.Ordinal));
        int verify = Array.FindIndex(script, line => line.Contains("tripwire.sh\" verify", StringComparison.Ordinal));

        Assert.True(record >= 0 && record < tests && tests < verify, "scripts/test.sh must record the fingerprint before `dotnet test` and verify it after");
    }
}
