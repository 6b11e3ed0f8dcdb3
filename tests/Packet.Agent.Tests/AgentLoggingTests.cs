using System.Text.Json;
using Microsoft.Extensions.Logging;
using Packet.Agent.Cli;
using Packet.Agent.Logging;
using Xunit;

namespace Packet.Agent.Tests;

/// <summary>Standard error is the process's: these tests take it over one at a time.</summary>
[CollectionDefinition(nameof(StandardErrorCollection), DisableParallelization = true)]
public sealed class StandardErrorCollection;

/// <summary>
/// The agent's three log formats in-process, standard error captured: the end-to-end tests read
/// them from the published binary, these hold the formatter choices and options themselves.
/// </summary>
[Collection(nameof(StandardErrorCollection))]
public sealed class AgentLoggingTests
{
    private static string[] Logged(LogFormat format, Action<ILoggerFactory> log)
    {
        var original = Console.Error;
        var captured = new StringWriter();
        Console.SetError(captured);
        try
        {
            using (var logging = AgentLogging.Create(format))
            {
                log(logging.Factory);
            }

            return captured.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        finally
        {
            Console.SetError(original);
        }
    }

    [Fact]
    public void Simple_lines_carry_a_utc_timestamp_to_the_millisecond_the_level_and_the_step_on_one_line()
    {
        string[] lines = Logged(LogFormat.Simple, factory =>
        {
            factory.CreateLogger("seed").Log(LogLevel.Information, new EventId(2, "seed"), "copied 3 entries");
            factory.CreateLogger("gpu").Log(LogLevel.Warning, new EventId(5, "gpu"), "no GPU");
        });

        Assert.Equal(2, lines.Length);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info: seed\[2\] copied 3 entries$", lines[0]);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn: gpu\[5\] no GPU$", lines[1]);
        Assert.DoesNotContain('\u001b', lines[0]);
    }

    [Fact]
    public void Json_lines_are_one_object_each_with_a_utc_timestamp()
    {
        string[] lines = Logged(LogFormat.Json, factory => factory.CreateLogger("hooks").Log(LogLevel.Error, new EventId(6, "hooks"), "broken"));

        using var entry = JsonDocument.Parse(Assert.Single(lines));
        Assert.Equal(("hooks", "Error", "broken"), (entry.RootElement.GetProperty("Category").GetString(), entry.RootElement.GetProperty("LogLevel").GetString(), entry.RootElement.GetProperty("Message").GetString()));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", entry.RootElement.GetProperty("Timestamp").GetString());
    }

    [Fact]
    public void Systemd_lines_carry_the_syslog_priority()
    {
        string[] lines = Logged(LogFormat.Systemd, factory => factory.CreateLogger("boot").Log(LogLevel.Warning, new EventId(0), "stopped"));

        Assert.Equal("<4>boot[0] stopped", Assert.Single(lines));
    }

    [Fact]
    public void Every_level_down_to_trace_goes_to_standard_error_none_to_standard_output()
    {
        var output = Console.Out;
        var stdout = new StringWriter();
        Console.SetOut(stdout);
        try
        {
            string[] lines = Logged(LogFormat.Systemd, factory => factory.CreateLogger("boot").Log(LogLevel.Trace, new EventId(0), "detail"));

            Assert.Single(lines);
            Assert.Empty(stdout.ToString());
        }
        finally
        {
            Console.SetOut(output);
        }
    }

    [Fact]
    public void Disposing_twice_is_safe_and_no_other_provider_can_be_added()
    {
        var logging = AgentLogging.Create(LogFormat.Simple);

        Assert.Throws<NotSupportedException>(() => logging.Factory.AddProvider(new Packet.Agent.TestSupport.ListLoggerProvider()));
        logging.Dispose();
        logging.Dispose();
    }
}
