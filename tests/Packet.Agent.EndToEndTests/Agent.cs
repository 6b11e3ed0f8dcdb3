using Packet.Agent.TestSupport;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// Runs the published NativeAOT agent as a child process, with a clean PACKET_* environment: only
/// the sandbox's scratch defaults (<see cref="TestSandbox"/>) and what the test sets.
/// </summary>
public static class Agent
{
    public static ChildResult Run(IEnumerable<string> arguments, IDictionary<string, string?>? environment = null, TimeSpan? timeout = null)
    {
        var clean = new Dictionary<string, string?>();
        foreach (string name in Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(n => n.StartsWith("PACKET_", StringComparison.Ordinal)))
        {
            clean[name] = TestSandbox.Variables.GetValueOrDefault(name);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            clean[name] = value;
        }

        return ChildProcess.Run(RepositoryPaths.AgentBinary, arguments, clean, timeout ?? TimeSpan.FromSeconds(60));
    }
}

/// <summary>A scratch workspace and home for one test, and a boot against them.</summary>
public sealed class Scratch : IDisposable
{
    private readonly TempDirectory _dir = new("e2e");

    public Scratch()
    {
        Workspace = _dir.Create("workspace");
        Home = _dir.Create("home");
    }

    public string Workspace { get; }

    public string Home { get; }

    public string PersistedHome => Path.Join(Workspace, "home");

    public string this[string relative] => _dir[relative];

    public string Create(string relative) => _dir.Create(relative);

    /// <summary>packet-agent boot against this scratch workspace and home, GPU check off unless asked for.</summary>
    public ChildResult Boot(string[]? options = null, string[]? command = null, IDictionary<string, string?>? environment = null, TimeSpan? timeout = null)
    {
        var arguments = new List<string> { "boot", "--workspace", Workspace, "--home", Home };
        options ??= [];
        if (!options.Any(o => o.StartsWith("--gpu", StringComparison.Ordinal) && !o.StartsWith("--gpu-timeout", StringComparison.Ordinal)))
        {
            arguments.AddRange(["--gpu", "off"]);
        }

        arguments.AddRange(options);
        if (command is not null)
        {
            arguments.Add("--");
            arguments.AddRange(command);
        }

        return Agent.Run(arguments, environment, timeout);
    }

    /// <summary>Writes an executable script (a fake nvidia-smi, say) and returns its path.</summary>
    public string Script(string relative, string body)
    {
        string path = _dir[relative];
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }

    public void Dispose() => _dir.Dispose();
}
