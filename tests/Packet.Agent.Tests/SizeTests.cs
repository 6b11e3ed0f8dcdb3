using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.Tests;

/// <summary>
/// Small enough to read: no source file of the agent over 400 lines, no method over 60. A method's
/// length is what the compiler's sequence points span in the portable PDB (from its first line of
/// code to its last; a lambda or a local function counts on its own). Static field initializers
/// (one method to the compiler) and the source generators' output do not count.
/// </summary>
public sealed class SizeTests
{
    private const int MaxFileLines = 400;
    private const int MaxMethodLines = 60;

    [Fact]
    public void No_source_file_is_over_400_lines()
    {
        var sources = Directory.EnumerateFiles(Path.Join(RepositoryPaths.Root, "src/Packet.Agent"), "*.cs", SearchOption.AllDirectories)
            .Where(path => !path.Contains("/obj/", StringComparison.Ordinal) && !path.Contains("/bin/", StringComparison.Ordinal))
            .ToList();

        Assert.NotEmpty(sources);
        var tooLong = sources.Select(path => (Path: Path.GetRelativePath(RepositoryPaths.Root, path), Lines: File.ReadAllLines(path).Length)).Where(f => f.Lines > MaxFileLines)
            .Select(f => $"{f.Path}: {f.Lines} lines").ToList();
        Assert.True(tooLong.Count == 0, $"files over {MaxFileLines} lines:\n{string.Join('\n', tooLong)}");
    }

    [Fact]
    public void No_method_is_over_60_lines()
    {
        string assembly = typeof(Units).Assembly.Location;
        string pdb = Path.ChangeExtension(assembly, ".pdb");
        using var provider = MetadataReaderProvider.FromPortablePdbStream(File.OpenRead(pdb));
        using var image = new PEReader(File.OpenRead(assembly));
        var reader = provider.GetMetadataReader();
        var metadata = image.GetMetadataReader();
        var spans = new List<(string Method, int Lines)>();
        foreach (var handle in reader.MethodDebugInformation)
        {
            var points = reader.GetMethodDebugInformation(handle).GetSequencePoints().Where(p => !p.IsHidden).ToList();
            if (points.Count > 0)
            {
                string source = reader.GetString(reader.GetDocument(points[0].Document).Name);
                if (source.Contains("/obj/", StringComparison.Ordinal))
                {
                    continue; // generated (JSON and logging source generators): not read, not written by us
                }

                var method = metadata.GetMethodDefinition(handle.ToDefinitionHandle());
                string name = metadata.GetString(method.Name);
                if (name == ".cctor")
                {
                    continue; // static field initializers: declarations (OptionTable's options), not logic
                }

                int first = points.Min(p => p.StartLine);
                string type = metadata.GetString(metadata.GetTypeDefinition(method.GetDeclaringType()).Name);
                spans.Add(($"{type}.{name} ({Path.GetFileName(source)}:{first})", points.Max(p => p.EndLine) - first + 1));
            }
        }

        Assert.True(spans.Count > 100, $"only {spans.Count} methods with sequence points in {pdb}");
        var tooLong = spans.Where(s => s.Lines > MaxMethodLines).Select(s => $"{s.Method}: {s.Lines} lines").Order(StringComparer.Ordinal).ToList();
        Assert.True(tooLong.Count == 0, $"methods over {MaxMethodLines} lines:\n{string.Join('\n', tooLong)}");
    }
}
