using MoeSharp.Fuzz;
using SharpFuzz;

// The AFL++ harness: `dotnet MoeSharp.Fuzz.dll TARGET` reads inputs from AFL++ (tests/fuzz/run.sh instruments the
// assemblies and starts afl-fuzz); `dotnet MoeSharp.Fuzz.dll TARGET FILE...` replays inputs once, without AFL++.
if (args.Length == 0 || !FuzzTargets.ByName.TryGetValue(args[0], out Action<byte[]>? target))
{
    Console.Error.WriteLine($"usage: MoeSharp.Fuzz {string.Join('|', FuzzTargets.ByName.Keys)} [FILE...]");
    return 2;
}
if (args.Length > 1)
{
    foreach (string file in args.Skip(1))
        target(File.ReadAllBytes(file));
    return 0;
}
Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target(buffer.ToArray());
});
return 0;
