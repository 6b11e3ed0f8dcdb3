namespace Packet.Agent.TestSupport;

/// <summary>A fresh directory under /tmp for one test (or class), removed with everything in it on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory(string? prefix = null)
    {
        Path = Directory.CreateTempSubdirectory($"packet-{prefix ?? "test"}-").FullName;
        // Non-root agents (setpriv) must be able to reach their fixtures.
        File.SetUnixFileMode(Path, (UnixFileMode)0b111_101_101);
    }

    public string Path { get; }

    /// <summary>
    /// Whether <paramref name="path"/> lies in a test's own tree (every TempDirectory, and the volumes
    /// mounted in them): the only places a test may change, even when the code under test is wrong.
    /// </summary>
    public static bool IsTestTree(string path) =>
        System.IO.Path.GetFullPath(path.Replace('\0', '_')) // NativeName's escape for bytes that are not UTF-8
            .StartsWith(System.IO.Path.Join(System.IO.Path.GetTempPath(), "packet-"), StringComparison.Ordinal);

    public string this[string relative] => System.IO.Path.Join(Path, relative);

    public string Create(string relative)
    {
        string full = this[relative];
        Directory.CreateDirectory(full);
        return full;
    }

    public void Dispose() => Remove(Path);

    /// <summary>Removes a directory tree whatever its fixtures' modes and names.</summary>
    public static void Remove(string path)
    {
        // chmod first: fixtures include 0000 files and 0555 directories (a volume without modes refuses,
        // which is why its complaints are not shown); rm handles names that are not UTF-8.
        ChildProcess.Run("chmod", ["-R", "u+rwx", path]);
        ChildProcess.Run("rm", ["-rf", path]);
    }
}
