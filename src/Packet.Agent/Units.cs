using System.Globalization;

namespace Packet.Agent;

/// <summary>Numbers as an operator reads them in a log line: 1,234 entries, 56.7 MiB, 2 min 5 s.</summary>
public static class Units
{
    public static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>"1 entry", "1,234 entries".</summary>
    public static string Entries(long count) => Count(count) + (count == 1 ? " entry" : " entries");

    public static string Bytes(double bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        int unit = 0;
        while (Math.Abs(bytes) >= 1024 && unit < units.Length - 1)
        {
            bytes /= 1024;
            unit++;
        }

        return unit == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{bytes:0} {units[unit]}")
            : string.Create(CultureInfo.InvariantCulture, $"{bytes:0.0} {units[unit]}");
    }

    /// <summary>"19.1 MiB", or "19.1 MiB on disk (1.0 GiB apparent)" for sparse files: what a copy costs the volume comes first.</summary>
    public static string Size(long onDisk, long apparent) =>
        Bytes(onDisk) == Bytes(apparent) ? Bytes(onDisk) : $"{Bytes(onDisk)} on disk ({Bytes(apparent)} apparent)";

    public static string Duration(TimeSpan duration)
    {
        if (duration.TotalSeconds < 10)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{duration.TotalSeconds:0.0#} s");
        }

        if (duration.TotalMinutes < 1)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{duration.TotalSeconds:0} s");
        }

        return duration.TotalHours < 1
            ? string.Create(CultureInfo.InvariantCulture, $"{(int)duration.TotalMinutes} min {duration.Seconds} s")
            : string.Create(CultureInfo.InvariantCulture, $"{(int)duration.TotalHours} h {duration.Minutes} min");
    }
}
