namespace Packet.Agent.TestSupport;

/// <summary>Where the repository and the published agent are, seen from a test.</summary>
public static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>
    /// The published NativeAOT binary the end-to-end tests run: PACKET_AGENT_BIN (scripts/test.sh
    /// publishes a fresh one and sets it), else artifacts/bin/packet-agent from scripts/build.sh.
    /// </summary>
    public static string AgentBinary
    {
        get
        {
            string path = Environment.GetEnvironmentVariable("PACKET_AGENT_BIN") is { Length: > 0 } given
                ? given
                : Path.Join(Root, "artifacts", "bin", "packet-agent");
            return File.Exists(path)
                ? path
                : throw new FileNotFoundException($"no published agent at {path}: run scripts/build.sh, or scripts/test.sh which publishes and tests it");
        }
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Join(directory.FullName, "Packet.Agent.sln")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException("the repository root (Packet.Agent.sln) is not above " + AppContext.BaseDirectory);
    }
}
