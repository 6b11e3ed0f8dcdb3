using System.Globalization;

namespace Packet.Agent.Cli;

/// <summary>The commands an option belongs to.</summary>
[Flags]
public enum CommandSet
{
    None = 0,
    Boot = 1,
    Gpu = 2,
    Status = 4,
    ResetHome = 8,
}

/// <summary>One option: its flag, its environment variable, its default, what it means. Parsing and --help both read this table.</summary>
public sealed record OptionSpec(string? Flag, string? EnvironmentVariable, string? ValueName, string Default, string Description, CommandSet Commands)
{
    public bool IsSwitch => ValueName is null;
}

/// <summary>
/// Parses <c>packet-agent COMMAND [options] [-- COMMAND ARGS...]</c>. Each option may also come
/// from its environment variable; the flag wins. An empty variable counts as unset (Kubernetes
/// manifests write <c>value: ""</c> for "not set"). Anything not accepted is a
/// <see cref="UsageException"/> naming the value, where it came from and what is accepted.
/// </summary>
public static class CommandLine
{
    public static readonly IReadOnlyList<OptionSpec> Options =
    [
        new("--workspace", "PACKET_WORKSPACE", "PATH", "/workspace", "where the persistent volume is mounted (absolute path)", CommandSet.Boot | CommandSet.Status | CommandSet.ResetHome),
        new("--home", "PACKET_HOME", "PATH", "$HOME, else the passwd entry of the current user", "the home directory to seed from", CommandSet.Boot | CommandSet.Status | CommandSet.ResetHome),
        new("--gpu", "PACKET_GPU", "MODE", "auto", "auto: check and warn; require: a missing or unhealthy GPU fails the boot; off: skip", CommandSet.Boot),
        new("--nvidia-smi", "PACKET_NVIDIA_SMI", "PATH", "nvidia-smi on PATH", "the nvidia-smi to run", CommandSet.Boot | CommandSet.Gpu),
        new("--gpu-timeout", "PACKET_GPU_TIMEOUT", "SECONDS", "15", "nvidia-smi is killed after this long (it can hang on a broken driver)", CommandSet.Boot | CommandSet.Gpu),
        new("--log-format", "PACKET_LOG_FORMAT", "FORMAT", "simple", "simple, json or systemd (Microsoft.Extensions.Logging.Console formatters)", CommandSet.Boot | CommandSet.Gpu | CommandSet.ResetHome),
        new("--strict", "PACKET_STRICT=1", null, "off", "a failed step exits 1 instead of being logged as a warning", CommandSet.Boot),
        new("--lock-timeout", "PACKET_LOCK_TIMEOUT", "SECONDS", "600", "how long to wait while another agent seeds the same volume", CommandSet.Boot),
        new("--hook-timeout", "PACKET_HOOK_TIMEOUT", "SECONDS", "600", "each boot hook is stopped after this long", CommandSet.Boot),
        new("--link-home", "PACKET_LINK_HOME", "MODE", "auto", "exec mode: auto replaces the live home with a link to /workspace/home when it can (root, ordinary directory), else sets HOME for COMMAND; off leaves both alone", CommandSet.Boot),
        new("--dry-run", null, null, "off", "report what would be done; change nothing", CommandSet.Boot | CommandSet.ResetHome),
        new("--at-next-boot", null, null, "off", "reset-home: move the home aside now, seed at the next boot", CommandSet.ResetHome),
        new("--no-upgrade", "PACKET_UPGRADE=off", null, "upgrade on", "do not bring image changes into a seeded home", CommandSet.Boot),
        new(null, "PACKET_TERMINATION_LOG", null, "/dev/termination-log", "where a failed boot writes its short reason (Kubernetes termination message)", CommandSet.Boot),
        new(null, "PACKET_IMAGE_VERSION", null, "unset", "set by the image build; a change tells the agent the image's home may have changed", CommandSet.Boot),
        new("--json", null, null, "off", "print the GPUs (gpu) or the status (status) as JSON", CommandSet.Gpu | CommandSet.Status),
    ];

    private const string HelpHint = "Run 'packet-agent --help' for the commands and options.";

    public static ParsedCommand Parse(IReadOnlyList<string> args, IEnvironment environment, Func<string?> passwdHome)
    {
        if (args.Count == 0)
        {
            throw new UsageException($"no command given; expected boot, status, gpu or reset-home. {HelpHint}");
        }

        return args[0] switch
        {
            "--help" or "-h" or "help" => new HelpCommand(),
            "--version" or "-V" => new VersionCommand(),
            "boot" => ParseBoot(args, environment, passwdHome),
            "gpu" => ParseGpu(args, environment),
            "status" => ParseStatus(args, environment, passwdHome),
            "reset-home" => ParseResetHome(args, environment, passwdHome),
            "run-as" => ParseRunAs(args),
            _ => throw new UsageException($"unknown command '{args[0]}'; expected boot, status, gpu or reset-home. {HelpHint}"),
        };
    }

    private static ParsedCommand ParseBoot(IReadOnlyList<string> args, IEnvironment environment, Func<string?> passwdHome)
    {
        var values = ReadFlags(args, CommandSet.Boot, environment, out var command, out bool help);
        return help ? new HelpCommand() : new BootCommand(BootOptionsFrom(values, environment, passwdHome, command));
    }

    private static ParsedCommand ParseStatus(IReadOnlyList<string> args, IEnvironment environment, Func<string?> passwdHome)
    {
        var values = ReadFlags(args, CommandSet.Status, environment, out _, out bool help);
        return help ? new HelpCommand() : new StatusCommand(new StatusOptions
        {
            Workspace = AbsolutePath(values, "--workspace") ?? "/workspace",
            Home = AbsolutePath(values, "--home") ?? DefaultHome(environment, passwdHome),
            Json = Switch(values, "--json"),
        });
    }

    private static ParsedCommand ParseResetHome(IReadOnlyList<string> args, IEnvironment environment, Func<string?> passwdHome)
    {
        var values = ReadFlags(args, CommandSet.ResetHome, environment, out _, out bool help);
        return help ? new HelpCommand() : new ResetHomeCommand(new ResetHomeOptions
        {
            Boot = BootOptionsFrom(values, environment, passwdHome, []) with { Gpu = GpuMode.Off },
            AtNextBoot = Switch(values, "--at-next-boot"),
        });
    }

    private static BootOptions BootOptionsFrom(Dictionary<string, (string Value, string Source)> values, IEnvironment environment, Func<string?> passwdHome, IReadOnlyList<string> command)
    {
        return new BootOptions
        {
            Workspace = AbsolutePath(values, "--workspace") ?? "/workspace",
            Home = AbsolutePath(values, "--home") ?? DefaultHome(environment, passwdHome),
            Gpu = Choice(values, "--gpu", GpuMode.Auto),
            NvidiaSmi = NonEmpty(values, "--nvidia-smi") ?? "nvidia-smi",
            GpuTimeout = Seconds(values, "--gpu-timeout", 15),
            LogFormat = Choice(values, "--log-format", LogFormat.Simple),
            Strict = Switch(values, "--strict"),
            LockTimeout = Seconds(values, "--lock-timeout", 600),
            HookTimeout = Seconds(values, "--hook-timeout", 600),
            LinkHome = Choice(values, "--link-home", LinkHomeMode.Auto),
            TerminationLog = values.TryGetValue("PACKET_TERMINATION_LOG", out var log) ? log.Value : "/dev/termination-log",
            DryRun = Switch(values, "--dry-run"),
            Upgrade = Upgrade(values),
            ImageVersion = values.TryGetValue("PACKET_IMAGE_VERSION", out var image) ? image.Value : null,
            Command = command,
        };
    }

    private static ParsedCommand ParseGpu(IReadOnlyList<string> args, IEnvironment environment)
    {
        var values = ReadFlags(args, CommandSet.Gpu, environment, out _, out bool help);
        if (help)
        {
            return new HelpCommand();
        }

        return new GpuCommand(new GpuOptions
        {
            NvidiaSmi = NonEmpty(values, "--nvidia-smi") ?? "nvidia-smi",
            GpuTimeout = Seconds(values, "--gpu-timeout", 15),
            LogFormat = Choice(values, "--log-format", LogFormat.Simple),
            Json = Switch(values, "--json"),
        });
    }

    private static RunAsCommand ParseRunAs(IReadOnlyList<string> args)
    {
        if (args.Count < 5 || args[3] != "--"
            || !uint.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out uint uid)
            || !uint.TryParse(args[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint gid))
        {
            throw new UsageException("usage: packet-agent run-as UID GID -- COMMAND [ARGS...] (numeric ids)");
        }

        return new RunAsCommand(uid, gid, args.Skip(4).ToArray());
    }

    /// <summary>Collects each option's raw value and its source (the flag, or the environment variable).</summary>
    private static Dictionary<string, (string Value, string Source)> ReadFlags(
        IReadOnlyList<string> args, CommandSet commandSet, IEnvironment environment, out IReadOnlyList<string> command, out bool help)
    {
        string commandName = args[0];
        var values = new Dictionary<string, (string Value, string Source)>(StringComparer.Ordinal);
        command = [];
        help = false;
        for (int i = 1; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg == "--" && commandSet == CommandSet.Boot)
            {
                command = args.Skip(i + 1).ToArray();
                if (command.Count == 0)
                {
                    throw new UsageException("'--' must be followed by the command to run, as in: packet-agent boot -- bash");
                }

                break;
            }

            if (arg is "--help" or "-h")
            {
                help = true;
                return values;
            }

            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                throw new UsageException(commandSet == CommandSet.Boot
                    ? $"unexpected argument '{arg}': put the command to run after '--', as in: packet-agent boot -- {arg}"
                    : $"unexpected argument '{arg}' for '{commandName}'. {HelpHint}");
            }

            int equals = arg.IndexOf('=', StringComparison.Ordinal);
            string name = equals < 0 ? arg : arg[..equals];
            var spec = Options.FirstOrDefault(o => o.Flag == name && o.Commands.HasFlag(commandSet))
                ?? throw new UsageException($"unknown option '{name}' for '{commandName}'. {HelpHint}");
            if (spec.IsSwitch)
            {
                if (equals >= 0)
                {
                    throw new UsageException($"'{name}' takes no value (got '{arg[(equals + 1)..]}')");
                }

                values[name] = ("1", name);
                continue;
            }

            string? value = equals >= 0 ? arg[(equals + 1)..] : i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null;
            values[name] = (value ?? throw new UsageException($"'{name}' needs a value: {name} {spec.ValueName}"), name);
        }

        foreach (var spec in Options.Where(o => o.Commands.HasFlag(commandSet) && o.EnvironmentVariable is not null))
        {
            string variable = spec.EnvironmentVariable!.Split('=')[0];
            string key = spec.Flag ?? variable;
            if (!values.ContainsKey(key) && environment.Get(variable) is { Length: > 0 } fromEnvironment)
            {
                values[key] = (fromEnvironment, variable);
            }
        }

        return values;
    }

    private static string? NonEmpty(Dictionary<string, (string Value, string Source)> values, string flag)
    {
        if (!values.TryGetValue(flag, out var given))
        {
            return null;
        }

        return given.Value.Length > 0 ? given.Value : throw Invalid(given, "a non-empty value");
    }

    private static string? AbsolutePath(Dictionary<string, (string Value, string Source)> values, string flag)
    {
        if (!values.TryGetValue(flag, out var given))
        {
            return null;
        }

        if (!given.Value.StartsWith('/'))
        {
            throw Invalid(given, "an absolute path (starting with /)");
        }

        return given.Value.Length > 1 ? given.Value.TrimEnd('/') : given.Value;
    }

    private static T Choice<T>(Dictionary<string, (string Value, string Source)> values, string flag, T fallback)
        where T : struct, Enum
    {
        if (!values.TryGetValue(flag, out var given))
        {
            return fallback;
        }

        foreach (var choice in Enum.GetValues<T>())
        {
            if (string.Equals(choice.ToString(), given.Value, StringComparison.OrdinalIgnoreCase))
            {
                return choice;
            }
        }

        var names = Enum.GetNames<T>().Select(n => n.ToLowerInvariant()).ToArray();
        throw Invalid(given, $"{string.Join(", ", names[..^1])} or {names[^1]}");
    }

    private static TimeSpan Seconds(Dictionary<string, (string Value, string Source)> values, string flag, double fallback)
    {
        if (!values.TryGetValue(flag, out var given))
        {
            return TimeSpan.FromSeconds(fallback);
        }

        const double Max = 7 * 24 * 3600;
        if (!double.TryParse(given.Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double seconds) || seconds <= 0 || seconds > Max)
        {
            throw Invalid(given, $"a number of seconds greater than 0 and at most {Max:0}");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>On by default; <c>--no-upgrade</c> turns it off, and so does <c>PACKET_UPGRADE=off</c> (which also takes on).</summary>
    private static bool Upgrade(Dictionary<string, (string Value, string Source)> values)
    {
        if (!values.TryGetValue("--no-upgrade", out var given))
        {
            return true;
        }

        return given.Source != "--no-upgrade" && Switch(values, "--no-upgrade", inverted: true);
    }

    /// <summary>
    /// A switch: given as a flag it is on; from its variable, 1/true/yes/on or 0/false/no/off.
    /// <paramref name="inverted"/> reads a variable that names the opposite of the flag
    /// (<c>PACKET_UPGRADE=on</c> for <c>--no-upgrade</c> off) and returns the variable's own value.
    /// </summary>
    private static bool Switch(Dictionary<string, (string Value, string Source)> values, string flag, bool inverted = false)
    {
        if (!values.TryGetValue(flag, out var given))
        {
            return false;
        }

        return given.Value.ToLowerInvariant() switch
        {
            "1" or "true" or "yes" or "on" => true,
            "0" or "false" or "no" or "off" => false,
            _ => throw Invalid(given, inverted ? "on or off (1/0, true/false, yes/no)" : "1 or 0 (true/false, yes/no, on/off)"),
        };
    }

    private static string DefaultHome(IEnvironment environment, Func<string?> passwdHome)
    {
        if (environment.Get("HOME") is { Length: > 0 } home)
        {
            return home.StartsWith('/') ? (home.Length > 1 ? home.TrimEnd('/') : home) : throw Invalid((home, "HOME"), "an absolute path (starting with /); or give --home");
        }

        return passwdHome() ?? throw new UsageException("no home directory: HOME is unset and the current user has no passwd entry; give --home PATH");
    }

    private static UsageException Invalid((string Value, string Source) given, string expected)
    {
        string where = given.Source.StartsWith("--", StringComparison.Ordinal) ? $"for {given.Source}" : $"in {given.Source}";
        return new UsageException($"invalid value '{given.Value}' {where}: expected {expected}");
    }
}
