using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Packet.Agent.TestSupport;

/// <summary>
/// Builds a small pure-Python wheel in a test, so pip can install it offline
/// (<c>--no-index --find-links DIR</c>): no network, no build backend.
/// </summary>
public static class WheelBuilder
{
    /// <summary>Writes NAME-VERSION-py3-none-any.whl into <paramref name="directory"/> and returns its path.</summary>
    public static string Build(string directory, string name, string version, IDictionary<string, string> files, IDictionary<string, string>? consoleScripts = null)
    {
        Directory.CreateDirectory(directory);
        string distribution = name.Replace('-', '_');
        string distInfo = $"{distribution}-{version}.dist-info";
        var entries = new Dictionary<string, string>(files)
        {
            [$"{distInfo}/METADATA"] = $"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            [$"{distInfo}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: packet-agent-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        };
        if (consoleScripts is { Count: > 0 })
        {
            entries[$"{distInfo}/entry_points.txt"] = "[console_scripts]\n" + string.Concat(consoleScripts.Select(s => $"{s.Key} = {s.Value}\n"));
        }

        var record = new StringBuilder();
        foreach (var (path, content) in entries)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(content);
            string hash = Convert.ToBase64String(SHA256.HashData(bytes)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
            record.Append(path).Append(",sha256=").Append(hash).Append(',').Append(bytes.Length).Append('\n');
        }

        record.Append(distInfo).Append("/RECORD,,\n");
        entries[$"{distInfo}/RECORD"] = record.ToString();

        string wheel = Path.Join(directory, $"{distribution}-{version}-py3-none-any.whl");
        using var archive = ZipFile.Open(wheel, ZipArchiveMode.Create);
        foreach (var (path, content) in entries)
        {
            using var stream = archive.CreateEntry(path).Open();
            stream.Write(Encoding.UTF8.GetBytes(content));
        }

        return wheel;
    }
}
