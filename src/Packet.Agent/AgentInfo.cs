namespace Packet.Agent;

/// <summary>The agent's name and version, as --version prints them and the marker and boot report record them.</summary>
public static class AgentInfo
{
    public const string Name = "packet-agent";

    /// <summary>The informational version (with the commit, when built from git), fixed at build time.</summary>
    public static string Version => AgentVersion.Value;
}
