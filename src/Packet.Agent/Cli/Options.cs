namespace Packet.Agent.Cli;

/// <summary><c>--gpu</c>: what a missing or unhealthy GPU means for the boot.</summary>
public enum GpuMode
{
    /// <summary>Check and warn.</summary>
    Auto,

    /// <summary>A missing or unhealthy GPU fails the boot.</summary>
    Require,

    /// <summary>Skip the check.</summary>
    Off,
}

/// <summary><c>--log-format</c>: the Microsoft.Extensions.Logging.Console formatter.</summary>
public enum LogFormat
{
    Simple,
    Json,
    Systemd,
}

/// <summary><c>--link-home</c>: whether exec mode may replace the live home with a link to the persisted one.</summary>
public enum LinkHomeMode
{
    /// <summary>Link when possible (root, ordinary directory), else set HOME for COMMAND.</summary>
    Auto,

    /// <summary>Leave the live home and HOME alone.</summary>
    Off,
}

/// <summary><c>--ssh</c>: whether the boot sets up and starts sshd.</summary>
public enum SshMode
{
    /// <summary>When there is a key to let in, the image has sshd, inside a container, and the agent is root.</summary>
    Auto,

    /// <summary>Also without a key and outside a container; an image without sshd is a warning (with --strict, a failed boot).</summary>
    On,

    /// <summary>Never.</summary>
    Off,
}

/// <summary>Everything <c>packet-agent boot</c> was asked to do, validated.</summary>
public sealed record BootOptions
{
    public required string Workspace { get; init; }

    public required string Home { get; init; }

    /// <summary><c>--user</c>: the home's account, when the operator names it; null: found from the image.</summary>
    public UserIds? User { get; init; } = OptionTable.User.Default;

    public GpuMode Gpu { get; init; } = OptionTable.Gpu.Default;

    public string NvidiaSmi { get; init; } = OptionTable.NvidiaSmi.Default!;

    public TimeSpan GpuTimeout { get; init; } = OptionTable.GpuTimeout.Default;

    public LogFormat LogFormat { get; init; } = OptionTable.LogFormat.Default;

    public bool Strict { get; init; } = OptionTable.Strict.Default;

    public TimeSpan LockTimeout { get; init; } = OptionTable.LockTimeout.Default;

    public TimeSpan HookTimeout { get; init; } = OptionTable.HookTimeout.Default;

    public LinkHomeMode LinkHome { get; init; } = OptionTable.LinkHome.Default;

    public SshMode Ssh { get; init; } = OptionTable.Ssh.Default;

    public int SshPort { get; init; } = OptionTable.SshPort.Default;

    /// <summary>The one address sshd listens on; null: every address.</summary>
    public string? SshListen { get; init; } = OptionTable.SshListen.Default;

    /// <summary>Also make and offer an RSA host key (old clients); ed25519 alone otherwise.</summary>
    public bool SshRsaHostKey { get; init; } = OptionTable.SshRsaHostKey.Default;

    /// <summary>A mounted secret directory whose files hold public keys, or null.</summary>
    public string? SshKeysDirectory { get; init; } = OptionTable.SshKeysDirectory.Default;

    /// <summary>Report what would be done; change nothing.</summary>
    public bool DryRun { get; init; } = OptionTable.DryRun.Default;

    /// <summary>Bring image changes into a seeded home (off: <c>--no-upgrade</c>, <c>PACKET_UPGRADE=off</c>).</summary>
    public bool Upgrade { get; init; } = OptionTable.Upgrade.Default;

    /// <summary><c>PACKET_IMAGE_VERSION</c>, set by the image build: a change means the image's home may have changed.</summary>
    public string? ImageVersion { get; init; } = OptionTable.ImageVersion.Default;

    public string TerminationLog { get; init; } = OptionTable.TerminationLog.Default!;

    /// <summary><c>PACKET_RUNTIME_DIR</c>; null: the default for the agent's user (root: /run/packet-agent; another user: /tmp/packet-agent-UID).</summary>
    public string? RuntimeDirectory { get; init; } = OptionTable.RuntimeDirectory.Default;

    /// <summary>Whether PACKET_TERMINATION_LOG named the file (then a failure to write it is worth a warning).</summary>
    public bool TerminationLogConfigured { get; init; }

    /// <summary>COMMAND and its arguments (after <c>--</c>); empty when the agent only boots.</summary>
    public IReadOnlyList<string> Command { get; init; } = [];
}

/// <summary>What <c>packet-agent gpu</c> was asked to do.</summary>
public sealed record GpuOptions
{
    public string NvidiaSmi { get; init; } = OptionTable.NvidiaSmi.Default!;

    public TimeSpan GpuTimeout { get; init; } = OptionTable.GpuTimeout.Default;

    public LogFormat LogFormat { get; init; } = OptionTable.LogFormat.Default;

    public bool Json { get; init; } = OptionTable.Json.Default;
}

/// <summary>What <c>packet-agent status</c> was asked to do.</summary>
public sealed record StatusOptions
{
    public required string Workspace { get; init; }

    public required string Home { get; init; }

    /// <summary><c>PACKET_RUNTIME_DIR</c>, where a boot keeps the report the volume could not take; null: the defaults.</summary>
    public string? RuntimeDirectory { get; init; } = OptionTable.RuntimeDirectory.Default;

    public bool Json { get; init; } = OptionTable.Json.Default;
}

/// <summary>What <c>packet-agent reset-home</c> was asked to do.</summary>
public sealed record ResetHomeOptions
{
    public required BootOptions Boot { get; init; }

    /// <summary>Only move the home aside; the next boot seeds.</summary>
    public bool AtNextBoot { get; init; } = OptionTable.AtNextBoot.Default;
}

/// <summary>A parsed command line.</summary>
public abstract record ParsedCommand;

public sealed record BootCommand(BootOptions Options) : ParsedCommand;

public sealed record GpuCommand(GpuOptions Options) : ParsedCommand;

public sealed record StatusCommand(StatusOptions Options) : ParsedCommand;

public sealed record ResetHomeCommand(ResetHomeOptions Options) : ParsedCommand;

public sealed record HelpCommand : ParsedCommand;

/// <summary>Internal: run COMMAND as another user (how hooks drop root).</summary>
public sealed record RunAsCommand(uint Uid, uint Gid, IReadOnlyList<string> Command) : ParsedCommand;

public sealed record VersionCommand : ParsedCommand;

/// <summary>The command line or environment asked for something the agent does not accept (exit 2).</summary>
public sealed class UsageException : Exception
{
    public UsageException(string message)
        : base(message)
    {
    }

    public UsageException()
    {
    }

    public UsageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Where configuration comes from besides the command line: the process environment, or a test's dictionary.</summary>
public interface IEnvironment
{
    string? Get(string name);
}

/// <summary>The variables the agent runs with (the process's, or the pod's recorded ones).</summary>
public sealed class VariablesEnvironment(System.Collections.IDictionary variables) : IEnvironment
{
    public string? Get(string name) => variables[name] as string;
}
