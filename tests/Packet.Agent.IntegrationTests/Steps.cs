using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Posix;
using Packet.Agent.Ssh;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>Runs one boot step as the sequence does: its decision, then (unless dry) the decision carried out.</summary>
internal static class Steps
{
    /// <summary>
    /// One step as the sequence runs it. With <paramref name="recorded"/>, where the step's recording
    /// adapters (<see cref="RecordingPosix"/> and the like) write, the decision must change nothing and
    /// carrying it out must change nothing its plan does not name.
    /// </summary>
    public static (StepResult Result, TOut Value) Run<TIn, TOut>(IBootStep<TIn, TOut> step, TIn input, BootOptions options, StopRequest? stop = null, ChangeLog? recorded = null)
    {
        var settings = new BootSettings(options, stop ?? new StopRequest(), Account(options));
        recorded?.Take();
        using var plan = step.Decide(input, settings);
        AssertNoChanges(recorded, "deciding");
        if (options.DryRun || plan is SettledPlan<TOut>)
        {
            return (plan.Preview, plan.Planned);
        }

        var applied = step.Apply(plan, settings);
        AssertInsidePlan([.. plan.Changes, .. applied.Result.Replanned?.Changes ?? []], recorded);
        return applied;
    }

    /// <summary>Every change recorded since the last look is an item of <paramref name="plan"/>.</summary>
    public static void AssertInsidePlan(IReadOnlyList<PlannedChange> plan, ChangeLog? recorded, IReadOnlyList<RecordedChange>? before = null)
    {
        if (recorded is null)
        {
            return;
        }

        var outside = PlanCoverage.Uncovered(plan, [.. before ?? [], .. recorded.Take()]);
        Assert.True(outside.Count == 0, $"changes the plan does not name:\n  {string.Join("\n  ", outside)}\nthe plan:\n  {string.Join("\n  ", plan.Select(c => c.Describe()))}");
    }

    private static void AssertNoChanges(ChangeLog? recorded, string when)
    {
        if (recorded?.Take() is { Count: > 0 } changes)
        {
            Assert.Fail($"{when} changed: {string.Join("; ", changes)}");
        }
    }

    /// <summary>
    /// A dry run, then a run, on the same workspace: the dry run changes nothing under
    /// <paramref name="watched"/>, and the run decides exactly what the dry run printed before it
    /// carries that decision out. Returns what the dry run printed and handed on, and what the run did.
    /// </summary>
    public static (StepResult DryRun, TOut Planned, StepResult Run, TOut Value) DryRunThenRun<TIn, TOut>(
        IBootStep<TIn, TOut> step, Func<TIn> input, BootOptions options, string watched, Action<BootSettings>? beforeRun = null, ChangeLog? recorded = null)
    {
        recorded?.Take();
        string before = Listing(watched);
        StepResult dryRun;
        TOut planned;
        using (var plan = step.Decide(input(), new BootSettings(options with { DryRun = true }, new StopRequest(), Account(options))))
        {
            (dryRun, planned) = (plan.Preview, plan.Planned);
        }

        Assert.Equal(before, Listing(watched));
        AssertNoChanges(recorded, "the dry run");
        var settings = new BootSettings(options with { DryRun = false }, new StopRequest(), Account(options));
        recorded?.Take();
        beforeRun?.Invoke(settings);
        var started = recorded?.Take() ?? []; // what a step starts before the others decide (the GPU query) is its plan's too
        using var decided = step.Decide(input(), settings);
        Assert.Equal(dryRun, decided.Preview);
        AssertNoChanges(recorded, "deciding");
        var (run, value) = decided is SettledPlan<TOut> ? (decided.Preview, decided.Planned) : step.Apply(decided, settings);
        AssertInsidePlan([.. decided.Changes, .. run.Replanned?.Changes ?? []], recorded, started);
        return (dryRun, planned, run, value);
    }

    /// <summary>The home's account as a boot finds it: from the test's home (its owner), as the image's.</summary>
    public static AccountChoice Account(BootOptions options) => HomeAccount.Resolve(PosixSystem.Instance, SystemAccounts.Instance, options);

    /// <summary>Every entry under a directory with its type, size, mode and modification time: what a dry run must leave as it was.</summary>
    private static string Listing(string root) => string.Join('\n', new DirectoryInfo(root)
        .EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true })
        .Select(e => $"{Path.GetRelativePath(root, e.FullName)} {e.Attributes} {(e as FileInfo)?.Length} {e.UnixFileMode} {e.LastWriteTimeUtc.Ticks} {e.LinkTarget}")
        .Order(StringComparer.Ordinal));
}
