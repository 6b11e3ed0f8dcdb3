using System.Text.Json.Serialization;

namespace Packet.Agent.Ssh;

/// <summary>
/// <c>/workspace/.packet/ssh.json</c>: what the last boot's SSH step set up, for status. The pid is
/// the sshd it started (in this container's pid namespace).
/// </summary>
public sealed record SshState(int Port, string HostKeyFingerprint, int Keys, bool HostKeysPersisted, int? Pid, string Log, string? ListenAddress = null);

/// <summary>Source-generated serialization of the SSH step's record.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SshState))]
public sealed partial class SshJson : JsonSerializerContext;
