using Packet.Agent.Cli;

namespace Packet.Agent.Boot;

/// <summary>What a step's problem means for the boot. The sequence applies it, and --strict, in one place.</summary>
public enum FailurePolicy
{
    /// <summary>A problem is logged as a warning and the boot goes on (with --strict: the boot fails).</summary>
    WarnAndContinue,

    /// <summary>A problem fails the boot (exit 1).</summary>
    FailBoot,
}

/// <summary>How a step ended; in the boot report as "ok", "skipped", "warning" or "failed".</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<StepOutcome>))]
public enum StepOutcome
{
    [System.Text.Json.Serialization.JsonStringEnumMemberName("ok")]
    Ok,

    [System.Text.Json.Serialization.JsonStringEnumMemberName("skipped")]
    Skipped,

    [System.Text.Json.Serialization.JsonStringEnumMemberName("warning")]
    Warning,

    [System.Text.Json.Serialization.JsonStringEnumMemberName("failed")]
    Failed,
}

/// <summary>
/// A step's result: ok, skipped (nothing to do, or not possible here), or a problem.
/// <see cref="Replanned"/> says why, and how, the step decided again when it carried its plan out
/// (under the workspace lock, what another agent did meanwhile can change the work).
/// </summary>
public sealed record StepResult(StepOutcome Outcome, string Summary)
{
    public Replan? Replanned { get; init; }

    public static StepResult Ok(string summary) => new(StepOutcome.Ok, summary);

    public static StepResult Skipped(string reason) => new(StepOutcome.Skipped, reason);

    /// <summary>The step could not do its job; its policy and --strict decide whether that is a warning or a failed boot.</summary>
    public static StepResult Problem(string reason) => new(StepOutcome.Warning, reason);

    /// <summary>The boot cannot go on, whatever the policy (COMMAND cannot be run).</summary>
    public static StepResult Failed(string reason) => new(StepOutcome.Failed, reason);
}

/// <summary>
/// A decision made again while carrying a plan out: why (in the log as "re-planned: ..." and in the
/// report), and every change the new decision makes, as a plan names them.
/// </summary>
public sealed record Replan(string Reason, IReadOnlyList<PlannedChange> Changes);

/// <summary>
/// What every step of one boot may read: the options, the stop request its work watches, and the
/// home's account (<see cref="HomeAccount"/>: from the image or the operator, never the volume).
/// </summary>
public sealed record BootSettings(BootOptions Options, StopRequest Stop, AccountChoice Account);

/// <summary>A step with no value to hand on.</summary>
public readonly record struct NoValue;

/// <summary>
/// What a step decided, having looked and changed nothing: how it reads (<see cref="Preview"/>, the
/// dry run's line), every change carrying it out makes (<see cref="Changes"/>, listed by the dry
/// run under that line), and what the following steps see in a dry run (<see cref="Planned"/>).
/// A step's own plans derive from this with the decision's data, and the plan is all the step's
/// Apply is given: the dry run and the run come from this one object. Tests hold Apply to the
/// changes (a recording IPosix fails on any other).
/// </summary>
public abstract class StepPlan<T> : IDisposable
{
    protected StepPlan(StepResult preview, T planned, IReadOnlyList<PlannedChange> changes)
    {
        Preview = preview;
        Planned = planned;
        Changes = changes;
    }

    public StepResult Preview { get; }

    public T Planned { get; }

    public IReadOnlyList<PlannedChange> Changes { get; }

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases what the decision opened for the work (the file it chose, say).</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>
/// Nothing to carry out now (done already, not possible, skipped): the run's result is the preview.
/// A dry run may foresee changes for later, when an earlier step's planned work is done (the
/// marker after the seed a dry run only planned); they are listed, never applied.
/// </summary>
public sealed class SettledPlan<T>(StepResult result, T value, IReadOnlyList<PlannedChange> foreseen) : StepPlan<T>(result, value, foreseen);

/// <summary>How steps make settled plans.</summary>
public static class StepPlan
{
    public static StepPlan<T> Settled<T>(StepResult result, T value, IReadOnlyList<PlannedChange>? foreseen = null) => new SettledPlan<T>(result, value, foreseen ?? []);
}

/// <summary>
/// One step of the boot sequence: one job, one stated failure policy, decided first and carried out
/// second. It takes what the previous step handed on and hands on its own typed result.
/// </summary>
public interface IBootStep<in TIn, TOut>
{
    StepId Id { get; }

    FailurePolicy Policy { get; }

    /// <summary>Looks at what the step would change and decides; changes nothing, starts nothing.</summary>
    StepPlan<TOut> Decide(TIn input, BootSettings settings);

    /// <summary>Carries out a plan <see cref="Decide"/> made (never a settled one): only its changes.</summary>
    (StepResult Result, TOut Value) Apply(StepPlan<TOut> plan, BootSettings settings);
}

/// <summary>What a step did, what its plan named, and how long it took, for the end-of-boot summary and the dry run.</summary>
public sealed record StepRecord(StepId Step, StepOutcome Outcome, string Summary, TimeSpan Duration, IReadOnlyList<PlannedChange> Changes, string? Replanned = null)
{
    public string Name => Step.Name;
}

/// <summary>A step a command leaves out on purpose (reset-home runs no hooks), reported as skipped with the reason.</summary>
public sealed class NotRunStep<TIn>(StepId id, string reason) : IBootStep<TIn, NoValue>
{
    public StepId Id => id;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepPlan<NoValue> Decide(TIn input, BootSettings settings) => StepPlan.Settled<NoValue>(StepResult.Skipped(reason), default);

    public (StepResult Result, NoValue Value) Apply(StepPlan<NoValue> plan, BootSettings settings) => (plan.Preview, plan.Planned);
}
