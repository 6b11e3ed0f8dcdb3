namespace Packet.Agent.Boot;

/// <summary>
/// A step of the boot by name and number, as README and docs/boot-sequence.md list it. Help, the log lines
/// (<c>seed[2]</c>), the boot report, status and reset-home all take the names and numbers from here.
/// </summary>
public sealed record StepId(string Name, int Number)
{
    /// <summary>The sequence's own lines (the end of a boot, a stop, the report): number 0.</summary>
    public static readonly StepId Boot = new("boot", StepNumber.Boot);

    public static readonly StepId Guard = new("guard", StepNumber.Guard);

    public static readonly StepId Seed = new("seed", StepNumber.Seed);

    public static readonly StepId Marker = new("marker", StepNumber.Marker);

    public static readonly StepId Profile = new("profile", StepNumber.Profile);

    public static readonly StepId Gpu = new("gpu", StepNumber.Gpu);

    public static readonly StepId Hooks = new("hooks", StepNumber.Hooks);

    public static readonly StepId Ssh = new("ssh", StepNumber.Ssh);

    public static readonly StepId Exec = new("exec", StepNumber.Exec);

    /// <summary>The steps of a boot, in order.</summary>
    public static readonly IReadOnlyList<StepId> Sequence = [Guard, Seed, Marker, Profile, Gpu, Hooks, Ssh, Exec];

    public override string ToString() => $"{Name}[{Number}]";
}

/// <summary>The steps' numbers as constants, for the logging source generator's event ids (<c>[LoggerMessage(EventId = StepNumber.Seed)]</c>).</summary>
public static class StepNumber
{
    public const int Boot = 0;
    public const int Guard = 1;
    public const int Seed = 2;
    public const int Marker = 3;
    public const int Profile = 4;
    public const int Gpu = 5;
    public const int Hooks = 6;
    public const int Ssh = 7;
    public const int Exec = 8;
}
