namespace Packet.Agent.Posix;

/// <summary>What the mount table says about a path: whether it is a mount point, and the file system there.</summary>
public readonly record struct MountFacts(bool MountPoint, string? FileSystem);

/// <summary>Whether the agent runs inside a container, by the marks container runtimes leave.</summary>
public static class ContainerDetection
{
    public static bool IsContainer() =>
        File.Exists("/.dockerenv") || File.Exists("/run/.containerenv")
        || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST"));
}

/// <summary>Whether a path is a mount point, from the kernel's own table (<c>/proc/self/mountinfo</c>).</summary>
public static class MountTable
{
    public static bool IsMountPoint(string path) => Describe(path).MountPoint;

    /// <summary>Whether <paramref name="path"/> is a mount point, and the file system type mounted there.</summary>
    public static MountFacts Describe(string path)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/mountinfo"))
            {
                // Fields: id parent major:minor root MOUNTPOINT options ... - FSTYPE source ...; spaces are \040.
                var fields = line.Split(' ');
                if (fields.Length > 4 && Unescape(fields[4]) == path)
                {
                    int separator = Array.IndexOf(fields, "-", 5);
                    return new MountFacts(true, separator > 0 && separator + 1 < fields.Length ? fields[separator + 1] : null);
                }
            }

            return new MountFacts(false, null);
        }
        catch (IOException)
        {
            return new MountFacts(false, null); // no /proc: treat it as the container's own directory
        }
    }

    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var text = new System.Text.StringBuilder(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
            {
                text.Append((char)(((field[i + 1] - '0') * 64) + ((field[i + 2] - '0') * 8) + (field[i + 3] - '0')));
                i += 3;
            }
            else
            {
                text.Append(field[i]);
            }
        }

        return text.ToString();
    }

    private static bool IsOctal(char c) => c is >= '0' and <= '7';
}
