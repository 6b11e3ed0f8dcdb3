using System.Text.Json;
using System.Text.Json.Serialization;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Hooks;

/// <summary>
/// What the hooks step remembers between boots, in <c>/workspace/.packet/hooks.json</c>: which
/// first-boot hooks have succeeded, with the content hash they succeeded with (an edited hook
/// runs again), and the hash of the requirements.txt last installed.
/// </summary>
public sealed class HookState
{

    /// <summary>First-boot hook name → the hash of the content it succeeded with.</summary>
    public Dictionary<string, string> FirstBootSucceeded { get; init; } = [];

    /// <summary>The hash of the requirements.txt last installed without error.</summary>
    public string? RequirementsInstalled { get; set; }

    public static HookState Load(DirectoryHandle state)
    {
        byte[]? content = state.ReadFile(WorkspaceLayout.HookState, 1024 * 1024, out _);
        return content is null ? Empty() : Parse(content);
    }

    /// <summary>
    /// Reads what <see cref="Save"/> writes. By hand: the serializer's first use (its metadata and
    /// converters) costs a boot whose hooks have nothing to do more than the rest of the step;
    /// saving follows a hook that ran and keeps the serializer. A test holds the two together.
    /// </summary>
    public static HookState Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            var state = Empty();
            Next(ref reader, JsonTokenType.StartObject);
            while (Next(ref reader) == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("first_boot_succeeded"u8))
                {
                    Next(ref reader, JsonTokenType.StartObject);
                    while (Next(ref reader) == JsonTokenType.PropertyName)
                    {
                        string hook = reader.GetString()!;
                        state.FirstBootSucceeded[hook] = Next(ref reader, JsonTokenType.String).GetString()!;
                    }
                }
                else if (reader.ValueTextEquals("requirements_installed"u8))
                {
                    state.RequirementsInstalled = Next(ref reader) is JsonTokenType.String or JsonTokenType.Null
                        ? reader.GetString()
                        : throw new JsonException("hooks.json: requirements_installed is not a string");
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            return state;
        }
        catch (JsonException)
        {
            return Empty(); // a damaged record only means first-boot hooks run once more
        }
    }

    public void Save(DirectoryHandle state, uint uid, uint gid) =>
        state.ReplaceFile(WorkspaceLayout.HookState, JsonSerializer.SerializeToUtf8Bytes(this, HooksJson.Default.HookState), uid, gid, FileModes.Readable);

    public static string Hash(byte[] content) => Copy.ContentHash.Of(content);

    private static HookState Empty() => new();

    private static JsonTokenType Next(ref Utf8JsonReader reader) =>
        reader.Read() ? reader.TokenType : throw new JsonException("hooks.json ends early");

    private static ref Utf8JsonReader Next(ref Utf8JsonReader reader, JsonTokenType expected)
    {
        if (Next(ref reader) != expected)
        {
            throw new JsonException($"hooks.json has {reader.TokenType} where {expected} belongs");
        }

        return ref reader;
    }
}

/// <summary>Source-generated serialization of <c>hooks.json</c>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(HookState))]
public sealed partial class HooksJson : JsonSerializerContext;
