using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Commands;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.Tests;

public sealed class CommandLineTests
{
    private static readonly Func<string?> NoPasswd = () => null;

    private static BootOptions Boot(string[] args, Dictionary<string, string>? environment = null, Func<string?>? passwd = null)
    {
        var parsed = CommandLine.Parse(args, new FakeEnvironment(environment ?? new() { ["HOME"] = "/root" }), passwd ?? NoPasswd);
        return Assert.IsType<BootCommand>(parsed).Options;
    }

    private static string UsageError(string[] args, Dictionary<string, string>? environment = null) =>
        Assert.Throws<UsageException>(() => CommandLine.Parse(args, new FakeEnvironment(environment ?? new() { ["HOME"] = "/root" }), NoPasswd)).Message;

    [Fact]
    public void Boot_uses_the_contract_defaults()
    {
        var options = Boot(["boot"]);

        Assert.Equal("/workspace", options.Workspace);
        Assert.Equal("/root", options.Home);
        Assert.Equal(GpuMode.Auto, options.Gpu);
        Assert.Equal("nvidia-smi", options.NvidiaSmi);
        Assert.Equal(TimeSpan.FromSeconds(15), options.GpuTimeout);
        Assert.Equal(LogFormat.Simple, options.LogFormat);
        Assert.False(options.Strict);
        Assert.Equal(TimeSpan.FromMinutes(10), options.LockTimeout);
        Assert.Equal("/dev/termination-log", options.TerminationLog);
        Assert.Empty(options.Command);
    }

    [Fact]
    public void Variables_land_in_their_own_fields_with_their_values()
    {
        var options = Boot(["boot"], new()
        {
            ["PACKET_WORKSPACE"] = "/mnt/ws",
            ["PACKET_HOME"] = "/home/user",
            ["PACKET_GPU"] = "require",
            ["PACKET_NVIDIA_SMI"] = "/opt/nvidia-smi",
            ["PACKET_GPU_TIMEOUT"] = "2.5",
            ["PACKET_LOG_FORMAT"] = "json",
            ["PACKET_STRICT"] = "1",
            ["PACKET_LOCK_TIMEOUT"] = "30",
            ["PACKET_TERMINATION_LOG"] = "/tmp/term",
        });

        Assert.Equal("/mnt/ws", options.Workspace);
        Assert.Equal("/home/user", options.Home);
        Assert.Equal(GpuMode.Require, options.Gpu);
        Assert.Equal("/opt/nvidia-smi", options.NvidiaSmi);
        Assert.Equal(TimeSpan.FromSeconds(2.5), options.GpuTimeout);
        Assert.Equal(LogFormat.Json, options.LogFormat);
        Assert.True(options.Strict);
        Assert.Equal(TimeSpan.FromSeconds(30), options.LockTimeout);
        Assert.Equal("/tmp/term", options.TerminationLog);
    }

    [Fact]
    public void A_flag_beats_its_environment_variable_in_both_spellings()
    {
        var environment = new Dictionary<string, string> { ["HOME"] = "/root", ["PACKET_WORKSPACE"] = "/from-env", ["PACKET_GPU"] = "require", ["PACKET_STRICT"] = "0" };

        var options = Boot(["boot", "--workspace", "/from-flag", "--gpu=off", "--strict"], environment);

        Assert.Equal("/from-flag", options.Workspace);
        Assert.Equal(GpuMode.Off, options.Gpu);
        Assert.True(options.Strict);
    }

    [Fact]
    public void An_empty_environment_variable_counts_as_unset()
    {
        var options = Boot(["boot"], new() { ["HOME"] = "/root", ["PACKET_WORKSPACE"] = string.Empty, ["PACKET_GPU"] = string.Empty });

        Assert.Equal("/workspace", options.Workspace);
        Assert.Equal(GpuMode.Auto, options.Gpu);
    }

    [Fact]
    public void Everything_after_the_double_dash_is_the_command_even_flags()
    {
        var options = Boot(["boot", "--gpu", "off", "--", "python", "--gpu", "x"]);

        Assert.Equal(["python", "--gpu", "x"], options.Command);
        Assert.Equal(GpuMode.Off, options.Gpu);
    }

    [Fact]
    public void Home_falls_back_to_the_passwd_entry_when_HOME_is_unset()
    {
        var options = Boot(["boot"], new(), passwd: () => "/home/from-passwd");

        Assert.Equal("/home/from-passwd", options.Home);
    }

    [Theory]
    [InlineData(new[] { "boot", "--frobnicate" }, "unknown option '--frobnicate' for 'boot'")]
    [InlineData(new[] { "boot", "--gpu", "maybe" }, "invalid value 'maybe' for --gpu: expected auto, require or off")]
    [InlineData(new[] { "boot", "--log-format=xml" }, "invalid value 'xml' for --log-format: expected simple, json or systemd")]
    [InlineData(new[] { "boot", "--workspace", "relative/ws" }, "invalid value 'relative/ws' for --workspace: expected an absolute path")]
    [InlineData(new[] { "boot", "--workspace=" }, "invalid value '' for --workspace: expected an absolute path")]
    [InlineData(new[] { "boot", "--gpu-timeout", "0" }, "invalid value '0' for --gpu-timeout: expected a number of seconds greater than 0")]
    [InlineData(new[] { "boot", "--gpu-timeout" }, "'--gpu-timeout' needs a value")]
    [InlineData(new[] { "boot", "--strict=yes" }, "'--strict' takes no value (got 'yes')")]
    [InlineData(new[] { "status", "extra" }, "unexpected argument 'extra' for 'status'. ")]
    [InlineData(new[] { "boot", "--workspace=/a", "/b" }, "unexpected argument '/b'")]
    [InlineData(new[] { "boot", "bash" }, "unexpected argument 'bash': put the command to run after '--'")]
    [InlineData(new[] { "boot", "--" }, "'--' must be followed by the command to run")]
    [InlineData(new[] { "gpu", "--workspace", "/x" }, "unknown option '--workspace' for 'gpu'")]
    [InlineData(new[] { "deploy" }, "unknown command 'deploy'; expected boot, status, gpu or reset-home")]
    [InlineData(new string[0], "no command given")]
    public void A_bad_command_line_is_a_usage_error_that_names_the_value_and_what_is_accepted(string[] args, string expected)
    {
        Assert.Contains(expected, UsageError(args));
    }

    [Theory]
    [InlineData("PACKET_GPU_TIMEOUT", "-3", "invalid value '-3' in PACKET_GPU_TIMEOUT: expected a number of seconds greater than 0")]
    [InlineData("PACKET_STRICT", "maybe", "invalid value 'maybe' in PACKET_STRICT: expected 1 or 0")]
    [InlineData("PACKET_GPU", "sometimes", "invalid value 'sometimes' in PACKET_GPU: expected auto, require or off")]
    [InlineData("PACKET_WORKSPACE", "ws", "invalid value 'ws' in PACKET_WORKSPACE: expected an absolute path")]
    [InlineData("HOME", "relative", "invalid value 'relative' in HOME")]
    public void A_bad_environment_variable_is_named_in_the_usage_error(string variable, string value, string expected)
    {
        var environment = new Dictionary<string, string> { ["HOME"] = "/root", [variable] = value };

        Assert.Contains(expected, UsageError(["boot"], environment));
    }

    [Fact]
    public void Gpu_takes_json_and_the_nvidia_smi_options()
    {
        var parsed = CommandLine.Parse(["gpu", "--json", "--nvidia-smi", "/bin/fake", "--gpu-timeout", "3"], new FakeEnvironment([]), NoPasswd);

        var options = Assert.IsType<GpuCommand>(parsed).Options;
        Assert.True(options.Json);
        Assert.Equal("/bin/fake", options.NvidiaSmi);
        Assert.Equal(TimeSpan.FromSeconds(3), options.GpuTimeout);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("help")]
    public void Help_is_a_command(string flag) =>
        Assert.IsType<HelpCommand>(CommandLine.Parse([flag], new FakeEnvironment([]), NoPasswd));

    [Fact]
    public void Help_after_a_command_is_help_too() =>
        Assert.IsType<HelpCommand>(CommandLine.Parse(["boot", "--gpu", "off", "--help"], new FakeEnvironment([]), NoPasswd));

    [Fact]
    public void Version_is_a_command() =>
        Assert.IsType<VersionCommand>(CommandLine.Parse(["--version"], new FakeEnvironment([]), NoPasswd));

    [Fact]
    public void Help_documents_every_flag_environment_variable_and_default()
    {
        string help = HelpText.Render();

        foreach (var spec in OptionTable.All)
        {
            if (spec.Flag is not null)
            {
                Assert.Contains(spec.Flag, help);
            }

            if (spec.VariableInHelp is not null)
            {
                Assert.Contains(spec.VariableInHelp, help);
            }

            Assert.Contains($"{spec.Help}. Default: {spec.DefaultInHelp}.", help);
        }

        Assert.Contains("126", help);
        Assert.Contains("127", help);
    }

    [Fact]
    public void Help_lists_the_boot_steps_by_the_names_and_numbers_the_logs_and_report_use()
    {
        var listed = System.Text.RegularExpressions.Regex.Matches(HelpText.Render(), @"^ +(\d)\. (\w+) ", System.Text.RegularExpressions.RegexOptions.Multiline)
            .Select(m => new StepId(m.Groups[2].Value, int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)));

        Assert.Equal(StepId.Sequence, listed);
    }

    /// <summary>
    /// --help is the contract in the terminal: any change to it shows up here, in review, as a change
    /// to Golden/help.txt (after a deliberate change: dotnet src/Packet.Agent/bin/Release/net10.0/packet-agent.dll --help > tests/Packet.Agent.Tests/Golden/help.txt).
    /// </summary>
    [Fact]
    public void Help_is_exactly_the_approved_text()
    {
        string approved = File.ReadAllText(Path.Join(RepositoryPaths.Root, "tests/Packet.Agent.Tests/Golden/help.txt"));

        Assert.Equal(approved, HelpText.Render());
    }
}

public sealed class OptionTableTests
{
    public static TheoryData<string> BootVariables() => [.. OptionTable.All.Where(o => o.Variable is not null && o.Commands.HasFlag(CommandSet.Boot)).Select(o => o.Variable!)];

    /// <summary>Walks the declarations, so an option added later is held to this without a new line here.</summary>
    [Theory]
    [MemberData(nameof(BootVariables))]
    public void Every_boot_option_is_read_from_its_variable_as_from_its_flag_and_changes_what_the_boot_gets(string variable)
    {
        var option = OptionTable.All.Single(o => o.Variable == variable);
        string value = Sample(option);

        string defaults = Parsed(["boot"]);
        string fromVariable = Parsed(["boot"], (variable, value));

        Assert.NotEqual(defaults, fromVariable);
        if (option.Flag is not null)
        {
            Assert.Equal(fromVariable, Parsed(option.IsSwitch ? ["boot", option.Flag] : ["boot", option.Flag, value]));
        }
    }

    /// <summary>A valid value that is not the option's default.</summary>
    private static string Sample(Option option) => option switch
    {
        SwitchOption switched => switched.VariableInHelp!.Split('=')[1],
        PathOption => "/sample/path",
        TextOption => "sample-text",
        SecondsOption => "7.5",
        PortOption => "2022",
        AddressOption => "127.0.0.1",
        AccountOption => "1000:100",
        _ when option.GetType().IsGenericType && option.GetType().GetGenericTypeDefinition() == typeof(ChoiceOption<>) =>
            Enum.GetNames(option.GetType().GetGenericArguments()[0]).Select(n => n.ToLowerInvariant()).First(n => n != option.DefaultInHelp),
        _ => throw new InvalidOperationException($"no sample value for {option.GetType().Name} {option.Key}: add one here"),
    };

    private static string Parsed(string[] args, params (string Name, string Value)[] variables)
    {
        var environment = new Dictionary<string, string> { ["HOME"] = "/root" };
        foreach (var (name, value) in variables)
        {
            environment[name] = value;
        }

        return Assert.IsType<BootCommand>(CommandLine.Parse(args, new FakeEnvironment(environment), () => null)).Options.ToString();
    }

    public static TheoryData<string> Switches() => [.. OptionTable.All.OfType<SwitchOption>().Where(o => o.Variable is not null).Select(o => o.Flag!)];

    [Theory]
    [MemberData(nameof(Switches))]
    public void A_switch_variable_set_as_help_shows_it_does_what_the_flag_does(string flag)
    {
        var option = OptionTable.All.OfType<SwitchOption>().Single(o => o.Flag == flag);
        string[] shown = option.VariableInHelp!.Split('=');
        var fromVariable = option.Read(new Dictionary<string, Given> { [option.Key] = new(shown[1], shown[0]) });
        var fromFlag = option.Read(new Dictionary<string, Given> { [option.Key] = new(string.Empty, flag) });

        Assert.Equal(!option.Default, fromFlag);
        Assert.Equal(fromFlag, fromVariable);
    }

    [Fact]
    public void Options_left_out_take_the_defaults_their_declarations_give()
    {
        var boot = Assert.IsType<BootCommand>(CommandLine.Parse(["boot"], new FakeEnvironment(new() { ["HOME"] = "/root" }), () => null)).Options;

        Assert.Equal(OptionTable.Workspace.Default, boot.Workspace);
        Assert.Equal(OptionTable.Gpu.Default, boot.Gpu);
        Assert.Equal(OptionTable.GpuTimeout.Default, boot.GpuTimeout);
        Assert.Equal(OptionTable.LockTimeout.Default, boot.LockTimeout);
        Assert.Equal(OptionTable.HookTimeout.Default, boot.HookTimeout);
        Assert.Equal(OptionTable.Upgrade.Default, boot.Upgrade);
        Assert.Equal(OptionTable.TerminationLog.Default, boot.TerminationLog);
        Assert.False(boot.TerminationLogConfigured);
        Assert.Equal("/workspace", boot.Workspace);
        Assert.Equal(TimeSpan.FromSeconds(600), boot.LockTimeout);
        Assert.True(boot.Upgrade);
    }

    [Fact]
    public void A_termination_log_named_in_the_environment_counts_as_configured()
    {
        var boot = Assert.IsType<BootCommand>(CommandLine.Parse(["boot"], new FakeEnvironment(new() { ["HOME"] = "/root", ["PACKET_TERMINATION_LOG"] = "/tmp/x/reason" }), () => null)).Options;

        Assert.Equal("/tmp/x/reason", boot.TerminationLog);
        Assert.True(boot.TerminationLogConfigured);
    }
}

internal sealed class FakeEnvironment(Dictionary<string, string> values) : IEnvironment
{
    public string? Get(string name) => values.GetValueOrDefault(name);
}

public sealed class OptionValueTests
{
    private static BootOptions Boot(params string[] args) =>
        Assert.IsType<BootCommand>(CommandLine.Parse(["boot", .. args], new FakeEnvironment(new() { ["HOME"] = "/root" }), () => null)).Options;

    private static string UsageError(params string[] args) =>
        Assert.Throws<UsageException>(() => CommandLine.Parse(["boot", .. args], new FakeEnvironment(new() { ["HOME"] = "/root" }), () => null)).Message;

    [Theory]
    [InlineData("/", "/")]
    [InlineData("//", "/")]
    [InlineData("/mnt/ws/", "/mnt/ws")]
    [InlineData("/mnt/ws///", "/mnt/ws")]
    [InlineData("/mnt/ws", "/mnt/ws")]
    public void Trailing_slashes_are_dropped_from_paths_but_the_root_stays(string given, string normalized) =>
        Assert.Equal(normalized, PathOption.Normalized(given));

    [Fact]
    public void A_relative_path_is_a_usage_error() =>
        Assert.Contains("expected an absolute path (starting with /)", UsageError("--workspace", "mnt/ws"));

    [Theory]
    [InlineData("1", 1)]
    [InlineData("2222", 2222)]
    [InlineData("65535", 65535)]
    public void A_port_from_1_to_65535_is_taken(string given, int port) =>
        Assert.Equal(port, Boot("--ssh-port", given).SshPort);

    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("0.0.0.0", "0.0.0.0")]
    [InlineData("::1", "::1")]
    [InlineData("fd00:0:0::10", "fd00::10")]
    public void A_listen_address_is_an_ip_address_written_as_sshd_reads_it(string given, string address) =>
        Assert.Equal(address, Boot("--ssh-listen", given).SshListen);

    [Theory]
    [InlineData("localhost")]
    [InlineData("127.1")]
    [InlineData("1")]
    [InlineData("127.0.0.256")]
    [InlineData("fe80::1%eth0")]
    [InlineData("127.0.0.1:22")]
    public void Any_other_listen_address_is_a_usage_error(string given) =>
        Assert.Contains("expected an IPv4 address in dotted quads or an IPv6 address, such as 127.0.0.1 or ::1", UsageError("--ssh-listen", given));

    [Fact]
    public void Without_a_listen_address_or_the_rsa_switch_sshd_listens_everywhere_with_an_ed25519_key_alone()
    {
        var options = Boot();

        Assert.Null(options.SshListen);
        Assert.False(options.SshRsaHostKey);
        Assert.True(Boot("--ssh-rsa-host-key").SshRsaHostKey);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("65536")]
    [InlineData("-1")]
    [InlineData("+22")]
    [InlineData("22.0")]
    [InlineData("ssh")]
    public void Any_other_port_is_a_usage_error(string given) =>
        Assert.Contains("expected a port number from 1 to 65535", UsageError("--ssh-port", given));

    [Theory]
    [InlineData("0.001", 0.001)]
    [InlineData("604800", 604800)]
    public void A_time_limit_above_0_and_up_to_a_week_is_taken(string given, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), Boot("--hook-timeout", given).HookTimeout);

    [Theory]
    [InlineData("0")]
    [InlineData("604800.5")]
    [InlineData("-5")]
    [InlineData("1e3")]
    [InlineData("ten")]
    public void Any_other_time_limit_is_a_usage_error(string given) =>
        Assert.Contains("expected a number of seconds greater than 0 and at most 604800", UsageError("--hook-timeout", given));

    [Fact]
    public void An_empty_text_value_is_a_usage_error() =>
        Assert.Contains("expected a non-empty value", UsageError("--nvidia-smi", string.Empty));

    [Theory]
    [InlineData("1", true)]
    [InlineData("TRUE", true)]
    [InlineData("yes", true)]
    [InlineData("On", true)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    [InlineData("NO", false)]
    [InlineData("off", false)]
    public void A_switch_variable_reads_every_spelling_of_on_and_off(string value, bool strict) =>
        Assert.Equal(strict, Assert.IsType<BootCommand>(CommandLine.Parse(["boot"], new FakeEnvironment(new() { ["HOME"] = "/root", ["PACKET_STRICT"] = value }), () => null)).Options.Strict);

    [Fact]
    public void A_switch_variable_off_by_default_says_which_spellings_it_takes() =>
        Assert.Contains(
            "invalid value 'maybe' in PACKET_STRICT: expected 1 or 0 (true/false, yes/no, on/off)",
            Assert.Throws<UsageException>(() => CommandLine.Parse(["boot"], new FakeEnvironment(new() { ["HOME"] = "/root", ["PACKET_STRICT"] = "maybe" }), () => null)).Message);

    [Fact]
    public void A_choice_names_every_value_it_takes() =>
        Assert.Contains("invalid value 'sometimes' for --ssh: expected auto, on or off", UsageError("--ssh", "sometimes"));
}

public sealed class OperationsCommandLineTests
{
    private static ParsedCommand Parse(string[] args, Dictionary<string, string>? environment = null) =>
        CommandLine.Parse(args, new FakeEnvironment(environment ?? new() { ["HOME"] = "/root" }), () => null);

    [Theory]
    [InlineData(new string[0], null, true)]
    [InlineData(new[] { "--no-upgrade" }, null, false)]
    [InlineData(new string[0], "off", false)]
    [InlineData(new string[0], "on", true)]
    [InlineData(new[] { "--no-upgrade" }, "on", false)]
    public void Upgrades_are_on_unless_the_flag_or_PACKET_UPGRADE_off_says_otherwise(string[] flags, string? variable, bool upgrade)
    {
        var environment = new Dictionary<string, string> { ["HOME"] = "/root" };
        if (variable is not null)
        {
            environment["PACKET_UPGRADE"] = variable;
        }

        var boot = Assert.IsType<BootCommand>(Parse(["boot", .. flags], environment));

        Assert.Equal(upgrade, boot.Options.Upgrade);
    }

    [Fact]
    public void A_bad_PACKET_UPGRADE_is_a_usage_error() =>
        Assert.Contains("invalid value 'sometimes' in PACKET_UPGRADE: expected on or off", Assert.Throws<UsageException>(() => Parse(["boot"], new() { ["HOME"] = "/r", ["PACKET_UPGRADE"] = "sometimes" })).Message);

    [Fact]
    public void The_image_version_and_dry_run_reach_the_boot()
    {
        var boot = Assert.IsType<BootCommand>(Parse(["boot", "--dry-run"], new() { ["HOME"] = "/root", ["PACKET_IMAGE_VERSION"] = "2026.11.1" }));

        Assert.True(boot.Options.DryRun);
        Assert.Equal("2026.11.1", boot.Options.ImageVersion);
    }

    [Theory]
    [InlineData("status")]
    [InlineData("reset-home")]
    [InlineData("gpu")]
    public void Help_after_any_command_is_help(string command) =>
        Assert.IsType<HelpCommand>(Parse([command, "--help"]));

    [Fact]
    public void Status_takes_its_home_from_the_flag_before_HOME()
    {
        var status = Assert.IsType<StatusCommand>(Parse(["status", "--home", "/home/dev"]));

        Assert.Equal("/home/dev", status.Options.Home);
    }

    [Fact]
    public void An_option_value_may_hold_an_equals_sign()
    {
        var boot = Assert.IsType<BootCommand>(Parse(["boot", "--nvidia-smi=/opt/a=b/nvidia-smi"]));

        Assert.Equal("/opt/a=b/nvidia-smi", boot.Options.NvidiaSmi);
    }

    [Theory]
    [InlineData("id")]
    [InlineData("sh", "-c", "id")]
    public void Run_as_takes_numeric_ids_and_the_command_after_the_double_dash(params string[] command)
    {
        var runAs = Assert.IsType<RunAsCommand>(Parse(["run-as", "1000", "100", "--", .. command]));

        Assert.Equal((1000u, 100u), (runAs.Uid, runAs.Gid));
        Assert.Equal(command, runAs.Command);
    }

    [Theory]
    [InlineData("1000", "100", "--")]
    [InlineData("1000", "100", "-x", "sh")]
    [InlineData("dev", "100", "--", "sh")]
    [InlineData("1000", "staff", "--", "sh")]
    [InlineData("-1", "100", "--", "sh")]
    public void Run_as_refuses_anything_but_two_numeric_ids_and_a_command(params string[] args) =>
        Assert.StartsWith("usage: packet-agent run-as UID GID -- COMMAND", Assert.Throws<UsageException>(() => Parse(["run-as", .. args])).Message);

    [Fact]
    public void Status_takes_the_workspace_home_and_json()
    {
        var status = Assert.IsType<StatusCommand>(Parse(["status", "--json", "--workspace", "/mnt/ws"]));

        Assert.True(status.Options.Json);
        Assert.Equal("/mnt/ws", status.Options.Workspace);
        Assert.Equal("/root", status.Options.Home);
    }

    [Fact]
    public void Reset_home_takes_at_next_boot_and_dry_run_and_never_runs_the_gpu_check()
    {
        var reset = Assert.IsType<ResetHomeCommand>(Parse(["reset-home", "--at-next-boot", "--dry-run"]));

        Assert.True(reset.Options.AtNextBoot);
        Assert.True(reset.Options.Boot.DryRun);
        Assert.Equal(GpuMode.Off, reset.Options.Boot.Gpu);
    }

    [Theory]
    [InlineData("status", "--gpu")]
    [InlineData("reset-home", "--json")]
    [InlineData("status", "--dry-run")]
    public void Options_of_other_commands_are_refused(string command, string option) =>
        Assert.Contains($"unknown option '{option}' for '{command}'", Assert.Throws<UsageException>(() => Parse([command, option, "x"])).Message);
}
