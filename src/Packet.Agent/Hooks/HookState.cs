using System.Text.Json;
using Mono.Unix.Native;
using Packet.Agent.Json;
using Packet.Agent.Workspace;

namespace Packet.Agent.Hooks;

/// <summary>
/// What the hooks step remembers between boots, in <c>/workspace/.packet/hooks.json</c>: which
/// first-boot hooks have succeeded, with the content hash they succeeded with (an edited hook
/// runs again), and the hash of the requirements.txt last installed.
/// </summary>
public sealed class HookState
{
    public const string FileName = "hooks.json";
    private const FilePermissions Mode = FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP | FilePermissions.S_IROTH;

    /// <summary>First-boot hook name → the hash of the content it succeeded with.</summary>
    public Dictionary<string, string> FirstBootSucceeded { get; init; } = [];

    /// <summary>The hash of the requirements.txt last installed without error.</summary>
    public string? RequirementsInstalled { get; set; }

    public static HookState Load(DirectoryHandle state)
    {
        try
        {
            byte[]? content = state.ReadFile(FileName, 1024 * 1024, out _);
            return content is null ? Empty() : JsonSerializer.Deserialize(content, AgentJson.Default.HookState) ?? Empty();
        }
        catch (JsonException)
        {
            return Empty(); // a damaged record only means first-boot hooks run once more
        }
    }

    public void Save(DirectoryHandle state, uint uid, uint gid) =>
        state.ReplaceFile(FileName, JsonSerializer.SerializeToUtf8Bytes(this, AgentJson.Default.HookState), uid, gid, Mode);

    public static string Hash(byte[] content) => Copy.ContentHash.Of(content);

    private static HookState Empty() => new();
}
