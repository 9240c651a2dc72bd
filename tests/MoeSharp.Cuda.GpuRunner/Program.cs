using System.Diagnostics;
using System.Reflection;
using MoeSharp.Cuda.Tests.Kernels;
using MoeSharp.Cuda.Tests.Native;
using Xunit;

// Runs MoeSharp.Cuda.Tests' GPU-only facts ([CudaFact], [NativeCudaFact]) on a machine that has the .NET runtime but
// no SDK (the GPU machines), where `dotnet test` is not available. A fact whose attribute sets Skip is reported as
// skipped with its reason; a class whose constructor takes fixtures gets new ones (each with a parameterless
// constructor) and disposes them. Exit code 1 when any fact failed. Usage: moe-gpu-tests [name filter]
string? filter = args.Length > 0 ? args[0] : null;
Assembly tests = typeof(CudaFactAttribute).Assembly;
var facts = tests
    .GetTypes()
    .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance).Select(m => (Type: t, Method: m)))
    .Select(x => (x.Type, x.Method, Fact: x.Method.GetCustomAttributes<FactAttribute>().FirstOrDefault()))
    .Where(x => x.Fact is CudaFactAttribute or NativeCudaFactAttribute)
    .Where(x => filter is null || $"{x.Type.Name}.{x.Method.Name}".Contains(filter, StringComparison.OrdinalIgnoreCase))
    .OrderBy(x => x.Type.FullName)
    .ThenBy(x => x.Method.Name)
    .ToList();

int passed = 0,
    failed = 0,
    skipped = 0;
foreach (var (type, method, fact) in facts)
{
    string name = $"{type.Name}.{method.Name}";
    if (fact!.Skip is { } reason)
    {
        skipped++;
        Console.WriteLine($"SKIP {name}: {reason}");
        continue;
    }
    var fixtures = new List<object>();
    var clock = Stopwatch.StartNew();
    try
    {
        ConstructorInfo ctor = type.GetConstructors().Single();
        object[] arguments = ctor.GetParameters()
            .Select(p =>
            {
                object fixture = Activator.CreateInstance(p.ParameterType)!;
                fixtures.Add(fixture);
                return fixture;
            })
            .ToArray();
        object instance = ctor.Invoke(arguments);
        method.Invoke(instance, null);
        (instance as IDisposable)?.Dispose();
        passed++;
        Console.WriteLine($"PASS {name} ({clock.Elapsed.TotalSeconds:F1} s)");
    }
    catch (Exception ex)
    {
        failed++;
        Exception cause = ex is TargetInvocationException { InnerException: { } inner } ? inner : ex;
        Console.WriteLine($"FAIL {name} ({clock.Elapsed.TotalSeconds:F1} s): {cause.GetType().Name}: {cause.Message}");
    }
    finally
    {
        foreach (object fixture in fixtures)
            (fixture as IDisposable)?.Dispose();
    }
}
Console.WriteLine($"GPU facts: {passed} passed, {failed} failed, {skipped} skipped");
return failed > 0 ? 1 : 0;
