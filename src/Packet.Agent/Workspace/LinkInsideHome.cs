using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Workspace;

/// <summary>Where a file of the home really is: its directory (opened) and its name there.</summary>
public sealed record HomeFile(DirectoryHandle Directory, string Name, string Path) : IDisposable
{
    public void Dispose() => Directory.Dispose();
}

/// <summary>
/// Follows a symlink in the persisted home, such as the <c>.bashrc -> dotfiles/bash/.bashrc</c>
/// that GNU stow, yadm and chezmoi's symlink mode make, to the file it names, as long as every step
/// stays inside the home: each directory is opened from the home with O_NOFOLLOW, <c>..</c> may not
/// climb out of it, and an absolute target must lie under the persisted home or the live home
/// (which in a container is a link to it). Anything else is refused with the reason and the fix: the
/// agent runs as root on a volume its users can write.
/// </summary>
public static class LinkInsideHome
{
    private const int MaxLinks = 40; // the kernel's own limit (ELOOP)

    public static HomeFile Resolve(DirectoryHandle home, string name, string liveHome)
    {
        var directories = new List<string>();
        string current = name;
        for (int links = 0; links <= MaxLinks; links++)
        {
            var directory = Open(home, directories);
            int found = directory.LStat(current, out var stat);
            if (found < 0 || (stat.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFLNK)
            {
                return new HomeFile(directory, current, System.IO.Path.Join([home.Path, .. directories, current]));
            }

            PosixException.Check(directory.ReadLink(current, out string target), "read the link", directory.PathOf(current));
            directory.Dispose();
            var components = Components(home, target, liveHome, directories, name);
            current = components[^1];
            directories = components[..^1];
        }

        throw Refused(home, name, "it is a chain of more than 40 symlinks");
    }

    private static List<string> Components(DirectoryHandle home, string target, string liveHome, List<string> linkDirectory, string name)
    {
        IEnumerable<string> path;
        if (target.StartsWith('/'))
        {
            string? inside = Under(target, home.Path) ?? Under(target, liveHome);
            path = inside?.Split('/') ?? throw Refused(home, name, $"it links to {target}, outside the persisted home");
        }
        else
        {
            path = linkDirectory.Concat(target.Split('/'));
        }

        var components = new List<string>();
        foreach (string component in path)
        {
            if (component is "" or ".")
            {
                continue;
            }

            if (component == "..")
            {
                if (components.Count == 0)
                {
                    throw Refused(home, name, $"its target {target} climbs out of the persisted home");
                }

                components.RemoveAt(components.Count - 1);
                continue;
            }

            components.Add(component);
        }

        return components.Count > 0 ? components : throw Refused(home, name, $"it links to the home itself ({target})");
    }

    private static string? Under(string path, string root)
    {
        string prefix = root.TrimEnd('/') + "/";
        return path.StartsWith(prefix, StringComparison.Ordinal) ? path[prefix.Length..] : null;
    }

    /// <summary>Opens the directories one by one from the home, never through a symlink.</summary>
    private static DirectoryHandle Open(DirectoryHandle home, List<string> directories)
    {
        var directory = home.OpenDirectory(".");
        foreach (string component in directories)
        {
            try
            {
                var next = directory.OpenDirectory(component);
                directory.Dispose();
                directory = next;
            }
            catch
            {
                directory.Dispose();
                throw;
            }
        }

        return directory;
    }

    private static UnsafeWorkspaceException Refused(DirectoryHandle home, string name, string why) =>
        new(home.PathOf(name), $"{why}; the agent follows a link there only inside the home. Make it a link inside {home.Path} (a relative one, as GNU stow makes), or a plain file");
}
