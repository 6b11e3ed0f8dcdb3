using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Sequence;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.Tests;

/// <summary>Running one boot's steps: policies, --strict, dry runs, each outcome's log line, a stop signal's ending, the closing line.</summary>
public sealed class StepRunnerTests : IDisposable
{
    private readonly ListLoggerProvider _logs = new();
    private readonly StopRequest _stop = new();

    public void Dispose()
    {
        _stop.Dispose();
        _logs.Dispose();
    }

    private StepRunner Runner(bool strict = false, bool dryRun = false, params string[] command)
    {
        var options = new BootOptions { Workspace = "/workspace", Home = "/root", Strict = strict, DryRun = dryRun, Command = command };
        return new StepRunner(new BootSettings(options, _stop, TestAccounts.Root), new Microsoft.Extensions.Logging.LoggerFactory([_logs]), TimeProvider.System);
    }

    private static FakeStep<int, int> Step(string name, StepResult result, FailurePolicy policy = FailurePolicy.WarnAndContinue) =>
        new(name, StepId.Sequence.FirstOrDefault(id => id.Name == name)?.Number ?? 9, result, input => input + 1, policy);

    [Theory]
    [InlineData(FailurePolicy.FailBoot, false, "no workspace; the boot fails (required)")]
    [InlineData(FailurePolicy.WarnAndContinue, true, "no workspace; the boot fails (--strict)")]
    public void A_warning_fails_the_boot_for_a_required_step_or_under_strict(FailurePolicy policy, bool strict, string summary)
    {
        var runner = Runner(strict);
        var later = Step("marker", StepResult.Ok("written"));

        runner.Step(Step("guard", StepResult.Problem("no workspace"), policy), 0);
        runner.Step(later, 0);

        Assert.Equal(new StepRecord(new StepId("guard", 1), StepOutcome.Failed, summary, TimeSpan.Zero, []), runner.Records.Single() with { Duration = TimeSpan.Zero });
        Assert.Equal(0, later.Runs);
        Assert.Equal((ExitCode.BootFailed, "guard: no workspace"), runner.Ending(null));
    }

    [Fact]
    public void A_warning_of_an_optional_step_lets_the_boot_go_on()
    {
        var runner = Runner();

        runner.Step(Step("gpu", StepResult.Problem("no GPU")), 0);

        Assert.Equal(StepOutcome.Warning, runner.Records.Single().Outcome);
        Assert.Equal((ExitCode.Success, (string?)null), runner.Ending(null));
    }

    [Fact]
    public void A_step_after_a_failure_runs_only_when_it_is_meant_to()
    {
        var runner = Runner();
        var marker = Step("marker", StepResult.Ok("written"));

        runner.Step(Step("seed", StepResult.Failed("copy failed")), 0);
        int value = runner.Step(marker, 41, afterFailure: true);

        Assert.Equal((1, 42), (marker.Runs, value));
    }

    [Fact]
    public void A_dry_run_records_the_decision_and_carries_nothing_out()
    {
        var runner = Runner(dryRun: true);
        var step = Step("seed", StepResult.Ok("would copy 3 entries"));

        int value = runner.Step(step, 1);

        Assert.Equal((0, 2), (step.Runs, value));
        Assert.Equal("would copy 3 entries", runner.Records.Single().Summary);
    }

    [Fact]
    public void A_step_that_throws_has_a_problem_of_its_own()
    {
        var runner = Runner();

        runner.Step(new FakeStep<int, int>("hooks", 6, StepResult.Ok("x"), _ => throw new InvalidOperationException("boom")), 0);

        Assert.Equal((StepOutcome.Warning, "unexpected InvalidOperationException: boom"), (runner.Records.Single().Outcome, runner.Records.Single().Summary));
    }

    [Fact]
    public void Each_outcome_is_logged_once_at_its_level()
    {
        var runner = Runner();

        runner.Step(Step("guard", StepResult.Ok("workspace mounted")), 0);
        runner.Step(Step("seed", StepResult.Skipped("already seeded")), 0);
        runner.Step(Step("gpu", StepResult.Problem("no GPU")), 0);
        runner.Step(Step("hooks", StepResult.Failed("broken")), 0);

        Assert.Equal(["Information: workspace mounted", "Information: skipped: already seeded", "Warning: no GPU", "Error: broken"], _logs.Lines);
    }

    [Fact]
    public void A_decision_made_again_is_logged_as_re_planned_before_the_outcome_and_recorded_with_the_plans_changes()
    {
        var runner = Runner();
        var lockFile = new PlannedChange(ChangeKind.Lock, "/workspace/.packet/lock");
        var step = new FakeStep<int, int>("seed", 2, StepResult.Ok("brought in") with { Replanned = new Replan("another agent changed the manifest", []) }, input => input) { Changes = [lockFile] };

        runner.Step(step, 0);

        Assert.Equal(["Information: re-planned: another agent changed the manifest", "Information: brought in"], _logs.Lines);
        var record = runner.Records.Single();
        Assert.Equal(("another agent changed the manifest", lockFile), (record.Replanned, record.Changes.Single()));
    }

    [Theory]
    [InlineData(false, "Warning: stopped by SIGTERM during the start; not run: guard, seed, marker, profile, gpu, hooks, ssh")]
    [InlineData(true, "Warning: stopped by SIGTERM during the start; not run: guard, seed, marker, profile, gpu, hooks, ssh, exec")]
    public void A_stop_before_any_step_names_the_start_and_every_step_not_run(bool command, string line)
    {
        var runner = command ? Runner(false, false, "jupyter", "lab") : Runner();
        _stop.Request(15);

        var (code, failure) = runner.Ending(null);

        Assert.Equal((ExitCode.StoppedBySignal + 15, "stopped by SIGTERM during the start"), (code, failure));
        Assert.Equal([line], _logs.Lines);
    }

    [Fact]
    public void A_stop_during_a_step_names_it_and_runs_nothing_after_it()
    {
        var runner = Runner();
        var marker = Step("marker", StepResult.Ok("written"));
        runner.Step(Step("guard", StepResult.Ok("ok")), 0);
        runner.Step(new FakeStep<int, int>("seed", 2, StepResult.Ok("copied"), input => input, effect: settings => settings.Stop.Request(2)), 0);

        runner.Step(marker, 0);
        var (code, failure) = runner.Ending(null);

        Assert.Equal(0, marker.Runs);
        Assert.Equal((ExitCode.StoppedBySignal + 2, "stopped by SIGINT during seed"), (code, failure));
        Assert.Equal("Warning: stopped by SIGINT during seed; not run: marker, profile, gpu, hooks, ssh", _logs.Lines[^1]);
    }

    [Fact]
    public void A_stop_after_every_step_has_nothing_left_to_name()
    {
        var runner = Runner();
        foreach (string name in new[] { "guard", "seed", "marker", "profile", "gpu", "hooks", "ssh" })
        {
            runner.Step(Step(name, StepResult.Ok("ok")), 0);
        }

        _stop.Request(15);
        runner.Ending(null);

        Assert.Equal("Warning: stopped by SIGTERM during ssh; not run: nothing", _logs.Lines[^1]);
    }

    [Fact]
    public void The_closing_line_counts_warnings_and_outlines_every_step()
    {
        var runner = Runner();
        runner.Step(Step("guard", StepResult.Ok("ok")), 0);
        runner.Step(Step("gpu", StepResult.Problem("no GPU")), 0);
        runner.Step(Step("hooks", StepResult.Skipped("none")), 0);

        runner.LogEnd(ExitCode.Success);

        Assert.StartsWith("Information: boot finished in ", _logs.Lines[^1]);
        Assert.EndsWith(", warnings: 1; guard ok, gpu warning, hooks skipped", _logs.Lines[^1]);
    }

    [Fact]
    public void A_failed_boot_closes_with_its_exit_code()
    {
        var runner = Runner();
        runner.Step(Step("guard", StepResult.Failed("no workspace")), 0);

        runner.LogEnd(ExitCode.BootFailed);

        Assert.StartsWith("Error: boot failed after ", _logs.Lines[^1]);
        Assert.EndsWith($" (exit {(int)ExitCode.BootFailed}): guard failed", _logs.Lines[^1]);
    }
}

public sealed class StopRequestTests
{
    [Fact]
    public void The_first_request_stops_the_boot_and_cancels_its_token()
    {
        using var stop = new StopRequest();

        Assert.Equal((false, 0, false), (stop.Requested, stop.Signal, stop.Token.IsCancellationRequested));
        Assert.True(stop.Request(15));

        Assert.Equal((true, 15, "SIGTERM", true), (stop.Requested, stop.Signal, stop.SignalName, stop.Token.IsCancellationRequested));
    }

    [Fact]
    public void A_second_request_is_refused_and_the_first_signal_stays()
    {
        using var stop = new StopRequest();
        stop.Request(2);

        Assert.False(stop.Request(15));

        Assert.Equal((2, "SIGINT"), (stop.Signal, stop.SignalName));
    }

    [Theory]
    [InlineData(1, "SIGHUP")]
    [InlineData(10, "signal 10")]
    public void Each_signal_is_named_as_an_operator_knows_it(int signal, string name)
    {
        using var stop = new StopRequest();
        stop.Request(signal);

        Assert.Equal(name, stop.SignalName);
    }
}
