using System.Globalization;

namespace Packet.Agent.Cli;

/// <summary>
/// Parses <c>packet-agent COMMAND [options] [-- COMMAND ARGS...]</c>. Each option may also come
/// from its environment variable; the flag wins. An empty variable counts as unset (Kubernetes
/// manifests write <c>value: ""</c> for "not set"). Anything not accepted is a
/// <see cref="UsageException"/> naming the value, where it came from and what is accepted.
/// </summary>
public static class CommandLine
{
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
        var values = ReadValues(args, CommandSet.Boot, environment, out var command, out bool help);
        return help ? new HelpCommand() : new BootCommand(BootOptionsFrom(values, environment, passwdHome, command));
    }

    private static ParsedCommand ParseStatus(IReadOnlyList<string> args, IEnvironment environment, Func<string?> passwdHome)
    {
        var values = ReadValues(args, CommandSet.Status, environment, out _, out bool help);
        return help ? new HelpCommand() : new StatusCommand(new StatusOptions
        {
            Workspace = OptionTable.Workspace.Read(values)!,
            Home = OptionTable.Home.Read(values) ?? DefaultHome(environment, passwdHome),
            Json = OptionTable.Json.Read(values),
            RuntimeDirectory = OptionTable.RuntimeDirectory.Read(values),
        });
    }

    private static ParsedCommand ParseResetHome(IReadOnlyList<string> args, IEnvironment environment, Func<string?> passwdHome)
    {
        var values = ReadValues(args, CommandSet.ResetHome, environment, out _, out bool help);
        return help ? new HelpCommand() : new ResetHomeCommand(new ResetHomeOptions
        {
            Boot = BootOptionsFrom(values, environment, passwdHome, []) with { Gpu = GpuMode.Off },
            AtNextBoot = OptionTable.AtNextBoot.Read(values),
        });
    }

    private static BootOptions BootOptionsFrom(Dictionary<string, Given> values, IEnvironment environment, Func<string?> passwdHome, IReadOnlyList<string> command) => new()
    {
        Workspace = OptionTable.Workspace.Read(values)!,
        Home = OptionTable.Home.Read(values) ?? DefaultHome(environment, passwdHome),
        User = OptionTable.User.Read(values),
        Gpu = OptionTable.Gpu.Read(values),
        NvidiaSmi = OptionTable.NvidiaSmi.Read(values)!,
        GpuTimeout = OptionTable.GpuTimeout.Read(values),
        LogFormat = OptionTable.LogFormat.Read(values),
        Strict = OptionTable.Strict.Read(values),
        LockTimeout = OptionTable.LockTimeout.Read(values),
        HookTimeout = OptionTable.HookTimeout.Read(values),
        LinkHome = OptionTable.LinkHome.Read(values),
        Ssh = OptionTable.Ssh.Read(values),
        SshPort = OptionTable.SshPort.Read(values),
        SshListen = OptionTable.SshListen.Read(values),
        SshRsaHostKey = OptionTable.SshRsaHostKey.Read(values),
        SshKeysDirectory = OptionTable.SshKeysDirectory.Read(values),
        TerminationLog = OptionTable.TerminationLog.Read(values)!,
        TerminationLogConfigured = values.ContainsKey(OptionTable.TerminationLog.Key),
        RuntimeDirectory = OptionTable.RuntimeDirectory.Read(values),
        DryRun = OptionTable.DryRun.Read(values),
        Upgrade = OptionTable.Upgrade.Read(values),
        ImageVersion = OptionTable.ImageVersion.Read(values),
        Command = command,
    };

    private static ParsedCommand ParseGpu(IReadOnlyList<string> args, IEnvironment environment)
    {
        var values = ReadValues(args, CommandSet.Gpu, environment, out _, out bool help);
        return help ? new HelpCommand() : new GpuCommand(new GpuOptions
        {
            NvidiaSmi = OptionTable.NvidiaSmi.Read(values)!,
            GpuTimeout = OptionTable.GpuTimeout.Read(values),
            LogFormat = OptionTable.LogFormat.Read(values),
            Json = OptionTable.Json.Read(values),
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

    /// <summary>Collects each option's raw value and its source (the flag, or the environment variable), keyed by <see cref="Option.Key"/>.</summary>
    private static Dictionary<string, Given> ReadValues(
        IReadOnlyList<string> args, CommandSet commandSet, IEnvironment environment, out IReadOnlyList<string> command, out bool help)
    {
        string commandName = args[0];
        var values = new Dictionary<string, Given>(StringComparer.Ordinal);
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

            // --name=value or --name value; a value may itself hold '='.
            string[] parts = arg.Split('=', 2);
            string name = parts[0];
            string? inline = parts.Length == 2 ? parts[1] : null;
            var spec = OptionTable.All.FirstOrDefault(o => o.Flag == name && o.Commands.HasFlag(commandSet))
                ?? throw new UsageException($"unknown option '{name}' for '{commandName}'. {HelpHint}");
            if (spec.IsSwitch)
            {
                if (inline is not null)
                {
                    throw new UsageException($"'{name}' takes no value (got '{inline}')");
                }

                values[name] = new Given(string.Empty, name);
                continue;
            }

            string? value = inline ?? (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null);
            values[name] = new Given(value ?? throw new UsageException($"'{name}' needs a value: {name} {spec.ValueName}"), name);
        }

        AddFromEnvironment(values, commandSet, environment);
        return values;
    }

    /// <summary>Each option the flags left unset, from its environment variable when that is set and not empty.</summary>
    private static void AddFromEnvironment(Dictionary<string, Given> values, CommandSet commandSet, IEnvironment environment)
    {
        foreach (var spec in OptionTable.All.Where(o => o.Commands.HasFlag(commandSet) && o.Variable is not null))
        {
            if (!values.ContainsKey(spec.Key) && environment.Get(spec.Variable!) is { Length: > 0 } fromEnvironment)
            {
                values[spec.Key] = new Given(fromEnvironment, spec.Variable!);
            }
        }
    }

    private static string DefaultHome(IEnvironment environment, Func<string?> passwdHome)
    {
        if (environment.Get("HOME") is { Length: > 0 } home)
        {
            return home.StartsWith('/') ? PathOption.Normalized(home) : throw new UsageException($"invalid value '{home}' in HOME: expected an absolute path (starting with /); or give --home");
        }

        return passwdHome() ?? throw new UsageException("no home directory: HOME is unset and the current user has no passwd entry; give --home PATH");
    }
}
