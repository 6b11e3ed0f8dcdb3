using System.Reflection;

namespace Packet.Agent;

/// <summary>The agent's name and version, as --version prints them and the marker records them.</summary>
public static class AgentInfo
{
    public const string Name = "packet-agent";

    public static string Version { get; } =
        typeof(AgentInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
}
