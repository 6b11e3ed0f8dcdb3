using System.Text.Json;
using Xunit;

namespace Packet.Agent.EndToEndTests;

public sealed class CliTests : IDisposable
{
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void Help_teaches_every_flag_and_variable_of_the_contract()
    {
        var result = Agent.Run(["--help"]);

        Assert.Equal(0, result.ExitCode);
        foreach (string item in new[]
        {
            "--workspace", "PACKET_WORKSPACE", "--home", "PACKET_HOME", "--gpu MODE", "PACKET_GPU", "--nvidia-smi", "PACKET_NVIDIA_SMI",
            "--gpu-timeout", "PACKET_GPU_TIMEOUT", "--log-format", "PACKET_LOG_FORMAT", "--strict", "PACKET_STRICT=1", "PACKET_TERMINATION_LOG",
            "packet-agent boot", "packet-agent gpu", "--json", "126", "127",
        })
        {
            Assert.Contains(item, result.StandardOutput);
        }
    }

    [Fact]
    public void Version_prints_the_name_and_version()
    {
        var result = Agent.Run(["--version"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"^packet-agent \d+\.\d+\.\d+", result.StandardOutput);
    }

    [Theory]
    [InlineData(new[] { "boot", "--no-such-flag" }, "unknown option '--no-such-flag' for 'boot'")]
    [InlineData(new[] { "boot", "--gpu", "maybe" }, "invalid value 'maybe' for --gpu: expected auto, require or off")]
    [InlineData(new[] { "boot", "--workspace", "relative" }, "expected an absolute path")]
    [InlineData(new[] { "boot", "--workspace=" }, "invalid value '' for --workspace")]
    [InlineData(new string[0], "no command given")]
    public void A_bad_command_line_exits_2_and_says_what_is_accepted(string[] args, string message)
    {
        var result = Agent.Run(args);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.StandardError);
        Assert.Empty(result.StandardOutput);
    }

    [Fact]
    public void A_bad_environment_value_exits_2_and_names_the_variable()
    {
        var result = Agent.Run(["boot"], new Dictionary<string, string?> { ["PACKET_GPU_TIMEOUT"] = "-3" });

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("invalid value '-3' in PACKET_GPU_TIMEOUT", result.StandardError);
    }

    [Fact]
    public void Json_logs_are_one_json_object_per_line_naming_the_step()
    {
        var result = _scratch.Boot(["--log-format", "json"]);

        Assert.Equal(0, result.ExitCode);
        Assert.NotEmpty(result.ErrorLines);
        var categories = new List<string>();
        foreach (string line in result.ErrorLines)
        {
            using var entry = JsonDocument.Parse(line);
            categories.Add(entry.RootElement.GetProperty("Category").GetString()!);
            Assert.False(string.IsNullOrEmpty(entry.RootElement.GetProperty("Message").GetString()));
        }

        Assert.Equal(["guard", "seed", "marker", "profile", "gpu", "hooks", "ssh", "boot"], categories.Distinct());
    }

    [Fact]
    public void Systemd_logs_carry_a_syslog_priority()
    {
        var result = _scratch.Boot(["--log-format", "systemd"], environment: new Dictionary<string, string?>());

        Assert.All(result.ErrorLines, line => Assert.Matches(@"^<\d>\w+\[\d\] ", line));
    }

    [Fact]
    public void Simple_logs_put_each_event_on_one_line_with_its_step()
    {
        HomeFixture(_scratch.Home);

        var result = _scratch.Boot();

        Assert.All(result.ErrorLines, line => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warn|fail): \w+\[\d\] ", line));
    }

    private static void HomeFixture(string home) => TestSupport.HomeFixture.Write(home, "line\nbreak.txt", "a name with a newline must not split a log line");
}
