using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using Packet.Agent.Cli;

namespace Packet.Agent.Logging;

/// <summary>
/// The agent's logging: Microsoft.Extensions.Logging.Console with its simple, json or systemd
/// formatter, everything on standard error (standard output belongs to COMMAND and to
/// <c>gpu --json</c>). Disposing it flushes the console logger's background queue: done before
/// every exit and every execve, or the last lines are lost (dotnet/runtime#79812).
/// </summary>
/// <remarks>
/// Built by hand instead of through <c>LoggerFactory.Create</c>: the formatters are internal and
/// come from DI, but their options are given as fixed values, which skips the configuration
/// binder. That keeps a boot with nothing to do at a few milliseconds (measured under NativeAOT:
/// about 5 ms for the usual builder, 0.3 ms this way).
/// </remarks>
public sealed class AgentLogging : IDisposable
{
    private readonly ServiceProvider _services;
    private readonly ConsoleLoggerProvider _provider;
    private bool _disposed;

    private AgentLogging(ServiceProvider services, ConsoleLoggerProvider provider)
    {
        _services = services;
        _provider = provider;
        Factory = new ConsoleOnlyFactory(provider);
    }

    public ILoggerFactory Factory { get; }

    public static AgentLogging Create(LogFormat format)
    {
        const string Timestamp = "yyyy-MM-ddTHH:mm:ss.fffZ ";
        // Only the formatters' registrations are kept from what AddConsole registers: nothing else
        // (configuration, filters, the factory) is needed, and each costs startup time under AOT.
        var console = new ServiceCollection();
        console.AddLogging(builder => builder.AddConsole());
        var services = new ServiceCollection();
        // Only the formatter in use is built: resolving each through DI is a measurable part of a no-op boot.
        string formatterType = format + nameof(ConsoleFormatter);
        var formatter = console.SingleOrDefault(d => d.ServiceType == typeof(ConsoleFormatter) && d.ImplementationType?.Name == formatterType)
            ?? throw new InvalidOperationException($"Microsoft.Extensions.Logging.Console registers no {formatterType}");
        ((ICollection<ServiceDescriptor>)services).Add(formatter);

        services.AddSingleton<IOptionsMonitor<SimpleConsoleFormatterOptions>>(new FixedOptions<SimpleConsoleFormatterOptions>(new()
        {
            SingleLine = true,
            TimestampFormat = Timestamp,
            UseUtcTimestamp = true,
            ColorBehavior = LoggerColorBehavior.Disabled,
        }));
        services.AddSingleton<IOptionsMonitor<JsonConsoleFormatterOptions>>(new FixedOptions<JsonConsoleFormatterOptions>(new()
        {
            TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ",
            UseUtcTimestamp = true,
        }));
        services.AddSingleton<IOptionsMonitor<ConsoleFormatterOptions>>(new FixedOptions<ConsoleFormatterOptions>(new()));
        var provider = services.BuildServiceProvider();
        var formatters = provider.GetServices<ConsoleFormatter>().ToArray();
        var consoleProvider = new ConsoleLoggerProvider(
            new FixedOptions<ConsoleLoggerOptions>(new ConsoleLoggerOptions
            {
                FormatterName = format.ToString().ToLowerInvariant(),
                LogToStandardErrorThreshold = LogLevel.Trace,
            }),
            formatters);
        return new AgentLogging(provider, consoleProvider);
    }

    /// <summary>Writes out everything queued and stops the logger; safe to call more than once.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _provider.Dispose();
        _services.Dispose();
    }

    /// <summary>
    /// Loggers straight from the console provider. The general LoggerFactory adds filter rules and
    /// provider aliases (looked up by reflection for every category), which the agent does not use:
    /// it logs at Information and above, to the console only.
    /// </summary>
    private sealed class ConsoleOnlyFactory(ConsoleLoggerProvider provider) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => provider.CreateLogger(categoryName);

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("the agent logs to the console only");

        public void Dispose()
        {
        }
    }

    private sealed class FixedOptions<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] T>(T value) : IOptionsMonitor<T>
    {
        public T CurrentValue => value;

        public T Get(string? name) => value;

        public IDisposable? OnChange(Action<T, string?> listener) => null;
    }
}
