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

public enum StepOutcome
{
    Ok,
    Skipped,
    Warning,
    Failed,
}

/// <summary>A step's result: ok, skipped (nothing to do, or not possible here), or a problem.</summary>
public sealed record StepResult(StepOutcome Outcome, string Summary)
{
    public static StepResult Ok(string summary) => new(StepOutcome.Ok, summary);

    public static StepResult Skipped(string reason) => new(StepOutcome.Skipped, reason);

    /// <summary>The step could not do its job; its policy and --strict decide whether that is a warning or a failed boot.</summary>
    public static StepResult Problem(string reason) => new(StepOutcome.Warning, reason);

    /// <summary>The boot cannot go on, whatever the policy (COMMAND cannot be run).</summary>
    public static StepResult Failed(string reason) => new(StepOutcome.Failed, reason);
}

/// <summary>What every step of one boot may read: the options, and the stop request its work watches.</summary>
public sealed record BootSettings(BootOptions Options, StopRequest Stop);

/// <summary>A step with no value to hand on.</summary>
public readonly record struct NoValue;

/// <summary>
/// What a step decided, having looked and changed nothing: how it reads (<see cref="Preview"/>, the
/// dry run's line), what the following steps see in a dry run (<see cref="Planned"/>), and how the
/// decision is carried out (<see cref="Apply"/>). The dry run and the run come from this one object,
/// so they cannot disagree.
/// </summary>
public sealed class StepPlan<T> : IDisposable
{
    private readonly Func<(StepResult Result, T Value)>? _apply;
    private readonly IDisposable? _holds;

    internal StepPlan(StepResult preview, T planned, Func<(StepResult, T)>? apply, IDisposable? holds)
    {
        Preview = preview;
        Planned = planned;
        _apply = apply;
        _holds = holds;
    }

    public StepResult Preview { get; }

    public T Planned { get; }

    public (StepResult Result, T Value) Apply() => _apply is null ? (Preview, Planned) : _apply();

    public void Dispose() => _holds?.Dispose();
}

/// <summary>How steps make their plans.</summary>
public static class StepPlan
{
    /// <summary>Nothing to carry out (done already, not possible, skipped): the run's result is the preview.</summary>
    public static StepPlan<T> Settled<T>(StepResult result, T value) => new(result, value, null, null);

    /// <summary>
    /// Work to carry out: <paramref name="apply"/> does it and says how it went. <paramref name="holds"/>
    /// is what the decision opened for the work (the file it chose, say), released once the plan is done with.
    /// </summary>
    public static StepPlan<T> ToApply<T>(StepResult preview, T planned, Func<(StepResult, T)> apply, IDisposable? holds = null) => new(preview, planned, apply, holds);
}

/// <summary>
/// One step of the boot sequence: one job, one stated failure policy, decided first and carried out
/// second. It takes what the previous step handed on and hands on its own typed result.
/// </summary>
public interface IBootStep<in TIn, TOut>
{
    /// <summary>The name every log line of the step carries (guard, seed, ...).</summary>
    string Name { get; }

    /// <summary>The step's number in README's boot sequence.</summary>
    int Number { get; }

    FailurePolicy Policy { get; }

    /// <summary>Looks at what the step would change and decides; changes nothing, starts nothing.</summary>
    StepPlan<TOut> Decide(TIn input, BootSettings settings);
}

/// <summary>What a step did and how long it took, for the end-of-boot summary.</summary>
public sealed record StepRecord(string Name, StepOutcome Outcome, string Summary, TimeSpan Duration);

/// <summary>A step a command leaves out on purpose (reset-home runs no hooks), reported as skipped with the reason.</summary>
public sealed class NotRunStep<TIn>(string name, int number, string reason) : IBootStep<TIn, NoValue>
{
    public string Name => name;

    public int Number => number;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepPlan<NoValue> Decide(TIn input, BootSettings settings) => StepPlan.Settled<NoValue>(StepResult.Skipped(reason), default);
}
