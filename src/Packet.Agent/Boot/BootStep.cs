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
}

/// <summary>One step of the boot sequence: one job, one stated failure policy.</summary>
public interface IBootStep
{
    /// <summary>The name every log line of the step carries (guard, seed, ...).</summary>
    string Name { get; }

    /// <summary>The step's number in CONTRACT.md's boot sequence.</summary>
    int Number { get; }

    FailurePolicy Policy { get; }

    StepResult Run(BootContext context);
}

/// <summary>What a step did and how long it took, for the end-of-boot summary.</summary>
public sealed record StepRecord(string Name, StepOutcome Outcome, string Summary, TimeSpan Duration);

/// <summary>A step a command leaves out on purpose (reset-home runs no hooks), reported as skipped with the reason.</summary>
public sealed class NotRunStep(string name, int number, string reason) : IBootStep
{
    public string Name => name;

    public int Number => number;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepResult Run(BootContext context) => StepResult.Skipped(reason);
}
