using System.Text;
using Mono.Unix;

namespace Packet.Agent.Posix;

/// <summary>
/// File names as the kernel sees them (bytes) and as Mono.Posix carries them (strings in which a
/// byte that is not valid UTF-8 is U+0000 followed by that byte), and how to show them in a log.
/// </summary>
public static class NativeName
{
    public static byte[] ToNullTerminated(string name)
    {
        int length = UnixEncoding.Instance.GetByteCount(name);
        var bytes = new byte[length + 1];
        UnixEncoding.Instance.GetBytes(name, 0, name.Length, bytes, 0);
        return bytes;
    }

    /// <summary>
    /// True when the name's bytes are valid UTF-8. Mono.Posix escapes most bytes that are not with
    /// U+0000, but decodes an encoded surrogate (ED A0 80) to a lone surrogate, which UTF-8 forbids too.
    /// </summary>
    public static bool IsUtf8(string name)
    {
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (c == '\0' || char.IsLowSurrogate(c))
            {
                return false;
            }

            if (char.IsHighSurrogate(c))
            {
                if (i + 1 >= name.Length || !char.IsLowSurrogate(name[i + 1]))
                {
                    return false;
                }

                i++;
            }
        }

        return true;
    }

    public static string FromBytes(ReadOnlySpan<byte> bytes)
    {
        // Plain ASCII, the common case, needs none of UnixEncoding's escaping.
        foreach (byte b in bytes)
        {
            if (b >= 0x80)
            {
                return UnixEncoding.Instance.GetString(bytes.ToArray());
            }
        }

        return Encoding.ASCII.GetString(bytes);
    }

    /// <summary>
    /// A name or path fit for one log line: control characters (a newline in a file name) and
    /// bytes that are not UTF-8 are shown as C escapes, so the line cannot be split or forged.
    /// </summary>
    public static string Display(string name)
    {
        if (!NeedsEscaping(name))
        {
            return name;
        }

        var display = new StringBuilder(name.Length + 8);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (c == '\0' && i + 1 < name.Length)
            {
                display.Append(@"\x").Append(((int)name[++i]).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            }
            else if (c == '\n')
            {
                display.Append(@"\n");
            }
            else if (c == '\t')
            {
                display.Append(@"\t");
            }
            else if (c == '\\')
            {
                display.Append(@"\\");
            }
            else if (char.IsControl(c))
            {
                display.Append(@"\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            }
            else if (char.IsHighSurrogate(c) && i + 1 < name.Length && char.IsLowSurrogate(name[i + 1]))
            {
                display.Append(c).Append(name[++i]);
            }
            else if (char.IsSurrogate(c))
            {
                // A lone surrogate is what Mono.Posix makes of an encoded one (ED A0 80): show those bytes.
                foreach (int b in new[] { 0xE0 | (c >> 12), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F) })
                {
                    display.Append(@"\x").Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
                }
            }
            else
            {
                display.Append(c);
            }
        }

        return display.ToString();
    }

    private static bool NeedsEscaping(string name)
    {
        foreach (char c in name)
        {
            if (char.IsControl(c) || c == '\\' || char.IsSurrogate(c))
            {
                return true;
            }
        }

        return false;
    }
}
