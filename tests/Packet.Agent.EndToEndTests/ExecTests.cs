using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>Exec mode: the agent becomes COMMAND, as tini-style init programs are tested.</summary>
public sealed class ExecTests : IDisposable
{
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void The_command_keeps_the_agents_PID()
    {
        var result = _scratch.Boot(command: ["sh", "-c", "echo $$"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(result.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), result.StandardOutput.Trim());
    }

    [Fact]
    public void The_commands_exit_code_is_the_exit_code()
    {
        Assert.Equal(42, _scratch.Boot(command: ["sh", "-c", "exit 42"]).ExitCode);
    }

    [Fact]
    public void The_command_finds_workspace_bin_first_on_PATH()
    {
        _scratch.Script("workspace/bin/my-tool", "echo from the volume");

        var result = _scratch.Boot(command: ["sh", "-c", "echo $PATH; my-tool"]);

        var lines = result.StandardOutput.Split('\n');
        Assert.StartsWith(_scratch.Workspace + "/bin:", lines[0]);
        Assert.Equal("from the volume", lines[1]);
    }

    [Fact]
    public void A_command_on_the_volumes_bin_can_itself_be_the_command()
    {
        _scratch.Script("workspace/bin/serve", "echo serving");

        Assert.Equal("serving\n", _scratch.Boot(command: ["serve"]).StandardOutput);
    }

    [Fact]
    public void A_missing_command_exits_127_and_says_so()
    {
        var result = _scratch.Boot(command: ["no-such-command-anywhere"]);

        Assert.Equal(127, result.ExitCode);
        Assert.Contains(result.ErrorLines, line => line.Contains("fail: exec[8] cannot run no-such-command-anywhere", StringComparison.Ordinal));
    }

    [Fact]
    public void A_command_that_is_not_executable_exits_126()
    {
        string notExecutable = _scratch["notes.txt"];
        File.WriteAllText(notExecutable, "just text");

        var result = _scratch.Boot(command: [notExecutable]);

        Assert.Equal(126, result.ExitCode);
        Assert.Contains("not executable", result.StandardError);
    }

    [Fact]
    public void No_descriptor_of_the_agent_leaks_into_the_command_and_inherited_ones_pass_through()
    {
        // One process throughout: a shell opens descriptor 7 (as a parent may pass one on), lists its
        // descriptors, execs the agent, which execs a shell that lists them again. Same set expected.
        // (No pipeline in the listing: a shell holds a pipeline's pipes itself while it runs.)
        const string List = "ls /proc/$$/fd; echo --";
        string script = $"exec 7</dev/null; {List}; exec {RepositoryPaths.AgentBinary} boot --workspace {_scratch.Workspace} --home {_scratch.Home} --gpu off -- sh -c \"{List}\"";

        var result = ChildProcess.Run("/bin/sh", ["-c", script]);

        var lists = result.StandardOutput.Split("--\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(list => list.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).Order().ToArray())
            .ToArray();
        Assert.True(lists.Length == 2, result.ToString());
        Assert.Contains(7, lists[0]);
        Assert.Equal(lists[0], lists[1]);
    }

    [Fact]
    public void The_command_starts_with_no_signal_blocked_and_the_runtimes_ignored_signals_restored()
    {
        // The .NET runtime ignores SIGPIPE and SIGXFSZ and cannot tell what it was started with, so the
        // agent puts both back to their defaults (what a container runtime gives PID 1), and empties the
        // mask, which execve would pass on. Other ignored signals pass through. The process reads its
        // own status: dash vforks, and its parent's mask is all-blocked until the child has exec'd.
        const string Signals = "exec grep -E '^Sig(Ign|Blk)' /proc/self/status";
        const ulong RuntimeChanged = (1UL << (13 - 1)) | (1UL << (25 - 1));
        for (int run = 0; run < 5; run++)
        {
            var baseline = Parse(ChildProcess.Run("/bin/sh", ["-c", Signals]).StandardOutput);

            var result = Parse(_scratch.Boot(command: ["sh", "-c", Signals]).StandardOutput);

            Assert.Equal(0UL, result["SigBlk"]);
            Assert.Equal(baseline["SigIgn"] & ~RuntimeChanged, result["SigIgn"]);
        }
    }

    private static Dictionary<string, ulong> Parse(string status) =>
        status.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(':'))
            .ToDictionary(parts => parts[0], parts => ulong.Parse(parts[1].Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public void Every_log_line_is_written_before_the_command_starts()
    {
        var result = _scratch.Boot(command: ["sh", "-c", "echo command-output >&2"]);

        var lines = result.ErrorLines;
        Assert.Equal("command-output", lines[^1]);
        Assert.Contains("boot[0] boot finished", lines[^2]);
    }

    [RootFact]
    public void As_root_the_live_home_becomes_a_link_to_the_persisted_home_before_the_command_runs()
    {
        Require.Root();
        HomeFixture.Write(_scratch.Home, ".profile", "from the image\n");

        var result = _scratch.Boot(
            command: ["sh", "-c", $"readlink {_scratch.Home}; echo $HOME; cat {_scratch.Home}/.profile"],
            environment: new Dictionary<string, string?> { ["HOME"] = _scratch.Home });

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal($"{_scratch.PersistedHome}\n{_scratch.Home}\nfrom the image\n", result.StandardOutput);
        Assert.Contains(result.ErrorLines, line => line.Contains($"info: exec[8] linked {_scratch.Home} to {_scratch.PersistedHome}", StringComparison.Ordinal));
    }

    [Fact]
    public void Link_home_off_leaves_the_live_home_and_HOME_alone()
    {
        string originalHome = _scratch.Create("original-home");

        var result = _scratch.Boot(["--link-home", "off"], ["sh", "-c", "echo $HOME"], new Dictionary<string, string?> { ["HOME"] = originalHome });

        Assert.Equal(originalHome + "\n", result.StandardOutput);
        Assert.True(new DirectoryInfo(originalHome).LinkTarget is null);
        Assert.True(Directory.Exists(_scratch.Home) && new DirectoryInfo(_scratch.Home).LinkTarget is null);
    }

    [RootFact]
    public void A_non_root_agent_gives_the_command_HOME_and_says_how_to_wire_every_shell()
    {
        Require.Root();
        ChildProcess.MustSucceed("chown", "-R", $"{Platform.Nobody}:{Platform.Nobody}", _scratch.Home, _scratch.Workspace);

        var result = ChildProcess.Run("setpriv", [
            $"--reuid={Platform.Nobody}", $"--regid={Platform.Nobody}", "--clear-groups", "--",
            RepositoryPaths.AgentBinary, "boot", "--workspace", _scratch.Workspace, "--home", _scratch.Home, "--gpu", "off", "--", "sh", "-c", "echo $HOME"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(_scratch.PersistedHome + "\n", result.StandardOutput);
        Assert.Contains(result.ErrorLines, line => line.Contains("warn: exec[8] HOME=", StringComparison.Ordinal) && line.Contains("not root", StringComparison.Ordinal));
        Assert.Null(new DirectoryInfo(_scratch.Home).LinkTarget);
    }
}
