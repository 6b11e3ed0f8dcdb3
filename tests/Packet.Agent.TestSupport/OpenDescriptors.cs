namespace Packet.Agent.TestSupport;

/// <summary>The descriptors this process holds open, by what they name: a test's own tree must have none left once the code under test returns.</summary>
public static class OpenDescriptors
{
    /// <summary>What each descriptor open on <paramref name="directory"/> or below it names (a removed entry ends in " (deleted)").</summary>
    public static List<string> Under(string directory) =>
        [.. Directory.EnumerateFileSystemEntries("/proc/self/fd")
            .Select(fd =>
            {
                try
                {
                    return new FileInfo(fd).LinkTarget ?? string.Empty;
                }
                catch (IOException)
                {
                    return string.Empty; // closed between the listing and the look
                }
            })
            .Where(target => target == directory || target.StartsWith(directory + "/", StringComparison.Ordinal))];
}
