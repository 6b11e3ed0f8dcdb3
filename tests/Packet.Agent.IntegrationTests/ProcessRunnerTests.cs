using System.Diagnostics;
using Mono.Unix.Native;
using Packet.Agent.Exec;
using Packet.Agent.Hooks;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The process runner nvidia-smi and ssh-keygen go through, with real short programs.</summary>
public sealed class ProcessRunnerTests
{
    private static Task<ProcessResult> Run(string script, TimeSpan? timeout = null, CancellationToken stop = default) =>
        new ProcessRunner().RunAsync("/bin/sh", ["-c", script], timeout ?? TimeSpan.FromSeconds(20), stop);

    [Fact]
    public async Task Output_error_and_exit_code_come_back_as_the_program_gave_them()
    {
        var result = await Run("echo out; echo err >&2; exit 7");

        Assert.Equal(new ProcessResult(7, "out\n", "err\n", TimedOut: false), result);
    }

    [Fact]
    public async Task Arguments_arrive_one_by_one_and_standard_input_is_closed()
    {
        var result = await new ProcessRunner().RunAsync("/bin/sh", ["-c", "printf '[%s]' \"$@\"; cat", "sh", "a b", string.Empty, "c"], TimeSpan.FromSeconds(20), CancellationToken.None);

        Assert.Equal("[a b][][c]", result.StandardOutput);
        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public async Task Only_the_first_64_KiB_of_endless_output_is_kept_and_the_program_still_runs_to_its_end()
    {
        var result = await Run("head -c 200000 /dev/zero | tr '\\0' x; echo done >&2");

        Assert.Equal(new string('x', 64 * 1024), result.StandardOutput);
        Assert.Equal("done\n", result.StandardError);
        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public async Task A_program_past_its_time_is_killed_with_what_it_started_and_said_to_have_timed_out()
    {
        string marker = Path.Join(Path.GetTempPath(), $"runner-{Guid.NewGuid():N}");
        var clock = Stopwatch.StartNew();

        var result = await Run($"sleep 30 & echo $! > {marker}; echo started; wait", TimeSpan.FromSeconds(2));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.True(result.TimedOut);
        Assert.Null(result.StartError);
        Assert.NotEqual(0, result.ExitCode);
        int child = int.Parse(File.ReadAllText(marker).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        File.Delete(marker);
        Assert.False(Syscall.kill(child, 0) == 0 && !IsZombie(child), "the program's child outlived the time limit");
    }

    [Fact]
    public async Task A_program_stopped_by_the_caller_is_killed_and_not_said_to_have_timed_out()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var clock = Stopwatch.StartNew();

        var result = await Run("sleep 30", TimeSpan.FromSeconds(20), stop.Token);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.False(result.TimedOut);
        Assert.NotEqual(0, result.ExitCode);
    }

    [Fact]
    public async Task A_grandchild_holding_the_output_open_is_not_waited_for_beyond_a_moment()
    {
        var clock = Stopwatch.StartNew();

        var result = await Run("sleep 5 & echo parent done");

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}");
        Assert.Equal(0, result.ExitCode);
        Assert.False(result.TimedOut);
    }

    [Fact]
    public async Task A_program_that_cannot_start_says_why()
    {
        var result = await new ProcessRunner().RunAsync("/nonexistent/nvidia-smi", [], TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.Equal(-1, result.ExitCode);
        Assert.False(result.TimedOut);
        Assert.Contains("No such file or directory", result.StartError, StringComparison.Ordinal);
    }

    internal static bool IsZombie(int pid) =>
        File.Exists($"/proc/{pid}/stat") && File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1][0] == 'Z';
}

/// <summary>
/// The hook runner with real hooks, through the agent's own <c>run-as</c> (the apphost the build puts
/// beside these tests runs the agent's assembly, so run-as is the real one).
/// </summary>
public sealed class HookRunnerTests : IDisposable
{
    private readonly TempDirectory _dir = new("hook-runner");
    private readonly List<string> _lines = [];

    public void Dispose() => _dir.Dispose();

    private static string Agent => Path.Join(AppContext.BaseDirectory, "packet-agent");

    private (HookOutcome Outcome, string Log) Run(string script, TimeSpan? timeout = null, HookIdentity? identity = null, IReadOnlyDictionary<string, string>? environment = null, string? agent = null, CancellationToken stop = default)
    {
        HomeFixture.Write(_dir.Path, "hook", "#!/bin/sh\n" + script + "\n", mode: "755");
        string log = _dir["hook.log"];
        int fd = Syscall.open(log, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_TRUNC | OpenFlags.O_CLOEXEC, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR);
        Assert.True(fd >= 0);
        try
        {
            var runner = new HookRunner(new FaultyPosix(), agent ?? Agent, TimeProvider.System);
            var outcome = runner.Run(
                new HookRun("boot.d/hook", _dir["hook"], ["first arg", "second"], fd),
                identity ?? new HookIdentity(Syscall.geteuid(), Syscall.getegid()),
                environment ?? new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin", ["HF_TOKEN"] = "hf_x" },
                _dir.Path,
                timeout ?? TimeSpan.FromSeconds(20),
                line =>
                {
                    lock (_lines)
                    {
                        _lines.Add(line);
                    }
                },
                stop);
            return (outcome, File.ReadAllText(log));
        }
        finally
        {
            Syscall.close(fd);
        }
    }

    [Fact]
    public void Every_line_of_output_and_error_is_handed_on_and_kept_in_the_hooks_log()
    {
        var (outcome, log) = Run("echo one; echo two >&2; printf 'three'");

        Assert.True(outcome.Succeeded);
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal(["one", "three", "two"], _lines.Order(StringComparer.Ordinal));
        Assert.Equal(["one", "three", "two"], log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.EndsWith("\n", log, StringComparison.Ordinal);
    }

    [Fact]
    public void The_hook_gets_its_arguments_its_folder_and_only_the_environment_it_is_given()
    {
        var (outcome, _) = Run("echo \"args=$1|$2\"; echo \"pwd=$(pwd)\"; echo \"token=$HF_TOKEN home=${HOME-unset}\"; echo \"stdin=$(cat)\"");

        Assert.True(outcome.Succeeded);
        Assert.Equal(["args=first arg|second", $"pwd={_dir.Path}", "token=hf_x home=unset", "stdin="], _lines);
    }

    [Fact]
    public void A_failing_hook_reports_its_exit_code()
    {
        var (outcome, _) = Run("exit 3");

        Assert.False(outcome.Succeeded);
        Assert.Equal(new HookOutcome(3, false, outcome.Duration), outcome);
        Assert.Equal("exited with code 3", outcome.Describe(TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void A_hook_past_its_time_is_stopped_with_everything_in_its_group()
    {
        string marker = _dir["child.pid"];
        var clock = Stopwatch.StartNew();

        var (outcome, _) = Run($"sleep 60 & echo $! > {marker}; sleep 60", TimeSpan.FromSeconds(3));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(12), $"took {clock.Elapsed}");
        Assert.True(outcome.TimedOut);
        Assert.False(outcome.Stopped);
        Assert.False(outcome.Succeeded);
        Assert.Equal(-1, outcome.ExitCode);
        Assert.Equal("did not finish within 3.0 s and was stopped (see --hook-timeout)", outcome.Describe(TimeSpan.FromSeconds(3)));
        int child = int.Parse(File.ReadAllText(marker).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(Syscall.kill(child, 0) == 0 && !ProcessRunnerTests.IsZombie(child), "the hook's background child outlived it");
    }

    [Fact]
    public void A_hook_that_ignores_SIGTERM_is_killed_after_the_grace()
    {
        // The time limit leaves the hook (the agent's run-as, then sh) ample time to set its trap, even on a loaded machine.
        string marker = _dir["terms"];
        var clock = Stopwatch.StartNew();

        var (outcome, _) = Run($"trap 'echo TERM >> {marker}' TERM; while :; do sleep 0.1; done", TimeSpan.FromSeconds(4));

        Assert.True(outcome.TimedOut);
        Assert.StartsWith("TERM", File.ReadAllText(marker), StringComparison.Ordinal);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(4.9), $"SIGKILL came before the grace: {clock.Elapsed}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
    }

    [Fact]
    public void A_hook_stopped_with_the_boot_says_so_and_is_not_a_time_out()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var clock = Stopwatch.StartNew();

        var (outcome, _) = Run("sleep 60", TimeSpan.FromSeconds(30), stop: stop.Token);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"took {clock.Elapsed}");
        Assert.True(outcome.Stopped);
        Assert.False(outcome.TimedOut);
        Assert.False(outcome.Succeeded);
        Assert.Equal("was stopped with the boot", outcome.Describe(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void A_background_server_holding_the_output_open_does_not_hold_the_boot()
    {
        string marker = _dir["server.pid"];
        var clock = Stopwatch.StartNew();

        var (outcome, _) = Run($"sleep 30 & echo $! > {marker}; echo started");

        Assert.True(outcome.Succeeded);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(6), $"took {clock.Elapsed}");
        Assert.Contains("started", _lines);
        Syscall.kill(int.Parse(File.ReadAllText(marker).Trim(), System.Globalization.CultureInfo.InvariantCulture), Signum.SIGKILL);
    }

    [Fact]
    public void An_agent_that_cannot_be_started_is_a_start_error()
    {
        var (outcome, _) = Run("exit 0", agent: _dir["no-such-agent"]);

        Assert.Equal(-1, outcome.ExitCode);
        Assert.NotNull(outcome.StartError);
        Assert.False(outcome.Succeeded);
        Assert.StartsWith("could not start: ", outcome.Describe(TimeSpan.FromSeconds(1)), StringComparison.Ordinal);
    }

    [RootFact]
    public void A_hook_runs_as_the_homes_owner_in_a_process_group_of_its_own()
    {
        Require.Root();
        Assert.Equal(0, Syscall.chmod(_dir.Path, FilePermissions.ACCESSPERMS));

        var (outcome, _) = Run("echo \"$(id -u) $(id -g)\"; cut -d' ' -f5 /proc/$$/stat; echo $$", identity: new HookIdentity(4242, 4343));

        Assert.True(outcome.Succeeded, string.Join('\n', _lines));
        Assert.Equal("4242 4343", _lines[0]);
        Assert.Equal(_lines[2], _lines[1]);
    }
}
