; Inno Setup script for SpareCycles on Windows (Inno Setup 6.3 or newer).
;
; It packages the PyInstaller bundle that installer/pyinstaller/sparecycles.spec builds on Windows
; (dist\sparecycles\ with sparecycles.exe, the console program, and sparecycles-gui.exe, the same program
; without a console window). Build, from the repository root in a Developer PowerShell:
;
;   py -3.11 -m venv .venv-bundle
;   .venv-bundle\Scripts\pip install . "pyinstaller>=6.10,<7"
;   .venv-bundle\Scripts\python -m PyInstaller --noconfirm installer\pyinstaller\sparecycles.spec
;   iscc /DAppVersion=0.1.0 installer\windows\sparecycles.iss
;
; The setup then lies in dist\installer\. This file cannot be built on the team's Linux machines; it was
; checked against the Inno Setup documentation (jrsoftware.org/ishelp): sections, constants, flags.
;
; What it does: installs per user by default (no administrator rights; {autopf} is then
; %LOCALAPPDATA%\Programs) or for all users when the user chooses so; Start menu entry; optional desktop
; icon; optional start at sign-in, which the app itself switches on (`sparecycles autostart on`, run as the
; signed-in user), so the installer's checkbox and the app's setting are one and the same; on uninstall,
; `sparecycles uninstall --keep-data` stops the agent and removes start at sign-in, and the wallet, the
; ledger and the settings stay (run `sparecycles uninstall` first to delete them, with confirmations).

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{6C0B7F4E-2A55-4C1B-9E0D-5B2A7D3E8F41}
AppName=SpareCycles
AppVersion={#AppVersion}
AppVerName=SpareCycles {#AppVersion}
AppPublisher=SpareCycles
AppPublisherURL=https://github.com/sparecycles/sparecycles
DefaultDirName={autopf}\SpareCycles
DefaultGroupName=SpareCycles
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0.19041
OutputDir=..\..\dist\installer
OutputBaseFilename=SpareCycles-{#AppVersion}-setup
SetupIconFile=sparecycles.ico
UninstallDisplayIcon={app}\sparecycles-gui.exe
UninstallDisplayName=SpareCycles
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "startatlogin"; Description: "Start SpareCycles when I sign in (it only works while the PC is idle)"; GroupDescription: "Start-up:"

[Files]
Source: "..\..\dist\sparecycles\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\SpareCycles"; Filename: "{app}\sparecycles-gui.exe"; WorkingDir: "{app}"
; cmd strips the outer quotes of /k's command, so the command is quoted once more (a folder with a space and
; parentheses or & would otherwise break it).
Name: "{group}\SpareCycles doctor (checks this PC)"; Filename: "{cmd}"; Parameters: "/k """"{app}\sparecycles.exe"" doctor"""; WorkingDir: "{app}"; IconFilename: "{app}\sparecycles.exe"
Name: "{autodesktop}\SpareCycles"; Filename: "{app}\sparecycles-gui.exe"; WorkingDir: "{app}"; Tasks: desktopicon

[Run]
Filename: "{app}\sparecycles.exe"; Parameters: "autostart on"; StatusMsg: "Turning on start at sign-in..."; Flags: runhidden runasoriginaluser waituntilterminated; Tasks: startatlogin
Filename: "{app}\sparecycles-gui.exe"; Description: "{cm:LaunchProgram,SpareCycles}"; Flags: nowait postinstall skipifsilent

[UninstallRun]
; The agent first (it stops, and start at sign-in is removed), then the tray app, whose open files would
; otherwise stay behind (Restart Manager closes applications for Setup only, not for the uninstaller).
Filename: "{app}\sparecycles.exe"; Parameters: "uninstall --keep-data"; Flags: runhidden waituntilterminated; RunOnceId: "StopAgentKeepData"
Filename: "{sys}\taskkill.exe"; Parameters: "/F /IM sparecycles-gui.exe"; Flags: runhidden waituntilterminated; RunOnceId: "CloseTrayApp"
